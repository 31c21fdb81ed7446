package io.tpmkms.bench;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.tls.ClientTls;
import io.tpmkms.tls.DevPki;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What transport security costs (issue 13): Encrypt 1 KiB at 32 client threads against a
 * plaintext key service and a TLS 1.3 one (client certificates verified when given), over TLS
 * without and with a client certificate, in alternating rounds in one run; and what a new
 * connection costs: connect, handshake and one Health/Check, plaintext vs TLS vs mutual TLS.
 * Two key service processes of this checkout (auditing and authentication as in the default
 * suite), one development CA.
 */
final class TlsBenchmark {
    static final String SECTION = "tls";
    static final String USAGE = "usage: java -jar tpmkms-bench.jar --tls [--rounds 5] [--warmup 2s] [--measure 6s]"
            + " [--threads 32] [--channels 4] [--connections 200] [--service-warmup 20s] [--service-jar PATH]"
            + " [--report docs/benchmarks.md | --no-report]";

    record Options(Path serviceJar, int rounds, Duration warmup, Duration window, int threads, int channels,
                   int connections, Path report, Duration startTimeout, Duration serviceWarmup) {
        Options(Path serviceJar, int rounds, Duration warmup, Duration window, int threads, int channels,
                int connections, Path report, Duration startTimeout) {
            this(serviceJar, rounds, warmup, window, threads, channels, connections, report, startTimeout,
                    Duration.ofSeconds(20));
        }

        static Options defaults() {
            return new Options(Path.of("key-service/target/quarkus-app/quarkus-run.jar"), 5, Duration.ofSeconds(2),
                    Duration.ofSeconds(6), 32, 4, 200, Path.of("docs/benchmarks.md"), Duration.ofSeconds(120));
        }

        Options withServiceWarmup(Duration d) {
            return new Options(serviceJar, rounds, warmup, window, threads, channels, connections, report,
                    startTimeout, d);
        }

        static Options parse(String... args) {
            Options o = defaults();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--tls" -> { }
                    case "--service-warmup" -> o = o.withServiceWarmup(Benchmark.Options.duration(v(args, ++i, a)));
                    case "--service-jar" -> o = new Options(Path.of(v(args, ++i, a)), o.rounds, o.warmup, o.window,
                            o.threads, o.channels, o.connections, o.report, o.startTimeout, o.serviceWarmup);
                    case "--rounds" -> o = new Options(o.serviceJar, n(v(args, ++i, a)), o.warmup, o.window,
                            o.threads, o.channels, o.connections, o.report, o.startTimeout, o.serviceWarmup);
                    case "--warmup" -> o = new Options(o.serviceJar, o.rounds, Benchmark.Options.duration(v(args, ++i,
                            a)), o.window, o.threads, o.channels, o.connections, o.report, o.startTimeout, o.serviceWarmup);
                    case "--measure" -> o = new Options(o.serviceJar, o.rounds, o.warmup,
                            Benchmark.Options.duration(v(args, ++i, a)), o.threads, o.channels, o.connections,
                            o.report, o.startTimeout, o.serviceWarmup);
                    case "--threads" -> o = new Options(o.serviceJar, o.rounds, o.warmup, o.window,
                            n(v(args, ++i, a)), o.channels, o.connections, o.report, o.startTimeout, o.serviceWarmup);
                    case "--channels" -> o = new Options(o.serviceJar, o.rounds, o.warmup, o.window, o.threads,
                            n(v(args, ++i, a)), o.connections, o.report, o.startTimeout, o.serviceWarmup);
                    case "--connections" -> o = new Options(o.serviceJar, o.rounds, o.warmup, o.window, o.threads,
                            o.channels, n(v(args, ++i, a)), o.report, o.startTimeout, o.serviceWarmup);
                    case "--report" -> o = new Options(o.serviceJar, o.rounds, o.warmup, o.window, o.threads,
                            o.channels, o.connections, Path.of(v(args, ++i, a)), o.startTimeout, o.serviceWarmup);
                    case "--no-report" -> o = new Options(o.serviceJar, o.rounds, o.warmup, o.window, o.threads,
                            o.channels, o.connections, null, o.startTimeout, o.serviceWarmup);
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            return o;
        }

        private static String v(String[] args, int i, String option) {
            if (i >= args.length) throw new IllegalArgumentException(option + " needs a value");
            return args[i];
        }

        private static int n(String s) {
            int n = Integer.parseInt(s.trim());
            if (n <= 0) throw new IllegalArgumentException("must be positive: " + s);
            return n;
        }
    }

    /** Connect + handshake + one Health/Check on a new channel, in microseconds, sorted. */
    record Handshakes(String mode, double[] micros) {
        double percentile(double p) {
            int i = (int) Math.ceil(p / 100.0 * micros.length) - 1;
            return micros[Math.max(0, Math.min(micros.length - 1, i))];
        }
    }

    record Result(MachineInfo machine, Options options, Map<String, List<Measurement>> rounds,
                  List<Handshakes> handshakes, String loadStart, String loadEnd, Instant at) {
        double medianOpsPerSecond(String mode) {
            double[] v = rounds.get(mode).stream().mapToDouble(Measurement::opsPerSecond).sorted().toArray();
            return v[v.length / 2];
        }

        long errors() {
            return rounds.values().stream().flatMap(List::stream).mapToLong(Measurement::errors).sum();
        }

        /** How much of the plaintext rate {@code mode} loses, in percent. */
        double costPercent(String mode) {
            double plain = medianOpsPerSecond(PLAINTEXT);
            return plain <= 0 ? 0 : 100.0 * (plain - medianOpsPerSecond(mode)) / plain;
        }

        String section() {
            StringBuilder b = new StringBuilder();
            b.append("## Transport security: Encrypt over plaintext, TLS 1.3 and mutual TLS (`--tls`), ")
                    .append(at.toString(), 0, 10).append("\n\n");
            b.append("Run ").append(at).append(" on ").append(machine.describe()).append("; 1-minute load average ")
                    .append(loadStart).append(" at the start, ").append(loadEnd).append(" at the end.\n\n");
            b.append(String.format(Locale.ROOT, "Encrypt AES-256-GCM, 1 KiB + 16 B AAD, %d client threads over %d "
                    + "channels, %s warm-up and %s measured per row; %d rounds alternating plaintext, TLS, mutual TLS "
                    + "(the median round counts), after %s of unmeasured load on each service. Two key services of this checkout (software backend, auditing on, "
                    + "authentication off): one plaintext, one TLS 1.3 with an ECDSA P-256 certificate of a "
                    + "development CA, client certificates verified when given (client-auth optional); the TLS "
                    + "clients verify chain and host name, the mutual TLS clients also present a certificate. "
                    + "Channels are made once per row, so the rows measure the record layer, not handshakes.\n\n",
                    options.threads, options.channels, options.warmup.toMillis() / 1000.0 + " s",
                    options.window.toMillis() / 1000.0 + " s", options.rounds,
                    options.serviceWarmup.toMillis() / 1000.0 + " s"));
            b.append("| transport | round ops/s | median ops/s | p50 ms | p99 ms | cost vs plaintext |\n");
            b.append("|---|---|---:|---:|---:|---:|\n");
            for (String mode : List.of(PLAINTEXT, TLS, MTLS)) {
                List<Measurement> ms = rounds.get(mode);
                Measurement median = ms.stream().sorted((x, y) -> Double.compare(x.opsPerSecond(), y.opsPerSecond()))
                        .toList().get(ms.size() / 2);
                String each = String.join(", ", ms.stream().map(m -> String.format(Locale.ROOT, "%.0f",
                        m.opsPerSecond())).toList());
                b.append(String.format(Locale.ROOT, "| %s | %s | %.0f | %.2f | %.2f | %s |%n", mode, each,
                        medianOpsPerSecond(mode), median.p50Micros() / 1000, median.p99Micros() / 1000,
                        mode.equals(PLAINTEXT) ? "-" : String.format(Locale.ROOT, "%.1f %%", costPercent(mode))));
            }
            b.append(String.format(Locale.ROOT, "%nTarget: TLS costs at most 15 %% of the plaintext rate at 32 "
                    + "clients: TLS %.1f %%, mutual TLS %.1f %% in this run.%n%n", costPercent(TLS),
                    costPercent(MTLS)));
            b.append(String.format(Locale.ROOT, "A new connection: a new channel, connect, handshake and one "
                    + "Health/Check, %d times per transport, one at a time, against the same two services:%n%n",
                    options.connections));
            b.append("| transport | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|\n");
            for (Handshakes h : handshakes) {
                b.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f | %.2f |%n", h.mode(), h.percentile(50) / 1000,
                        h.percentile(90) / 1000, h.percentile(99) / 1000));
            }
            b.append("\nReproduce: `java -jar bench/target/tpmkms-bench.jar --tls` (after `./mvnw -B package "
                    + "-DskipTests`).\n");
            return b.toString();
        }
    }

    static final String PLAINTEXT = "plaintext";
    static final String TLS = "TLS 1.3";
    static final String MTLS = "mutual TLS 1.3";

    private TlsBenchmark() {}

    static int main(String[] args) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("tpmkms-bench: " + e.getMessage());
            System.err.println(USAGE);
            return 2;
        }
        try {
            Result r = run(options, System.out);
            return r.errors() == 0 ? 0 : 1;
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            return 1;
        }
    }

    static Result run(Options options, PrintStream out) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadStart = MachineInfo.loadAverage();
        Path pki = Files.createTempDirectory("tpmkms-bench-tls");
        Path ca = DevPki.ensureDevelopmentSet(pki, List.of("key-service", "bench"));
        Map<String, String> tlsEnv = new LinkedHashMap<>();
        tlsEnv.put("TPMKMS_TLS_SERVER_CERT_FILE", pki.resolve("key-service.crt").toString());
        tlsEnv.put("TPMKMS_TLS_SERVER_KEY_FILE", pki.resolve("key-service.key").toString());
        tlsEnv.put("TPMKMS_TLS_SERVER_CLIENT_CA_FILE", ca.toString());
        tlsEnv.put("TPMKMS_TLS_SERVER_CLIENT_AUTH", "optional");
        ClientTls tls = ClientTls.verifiedBy(ca);
        ClientTls mtls = tls.withClientCertificate(pki.resolve("bench.crt"), pki.resolve("bench.key"));
        Map<String, List<Measurement>> rounds = new LinkedHashMap<>();
        List<Handshakes> handshakes = new ArrayList<>();
        out.println("starting a plaintext and a TLS key service ...");
        try (ServiceProcess plain = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of());
             ServiceProcess secure = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), tlsEnv, tls)) {
            String secureTarget = "localhost:" + secure.target().substring(secure.target().lastIndexOf(':') + 1);
            Map<String, String> targets = Map.of(PLAINTEXT, plain.target(), TLS, secureTarget, MTLS, secureTarget);
            Map<String, ChannelCredentials> creds = Map.of(PLAINTEXT, InsecureChannelCredentials.create(),
                    TLS, tls.credentials(null), MTLS, mtls.credentials(null));
            boolean[] prepared = new boolean[2];
            // both JVMs compiled and their databases warm before anything counts: without this the first
            // rounds measured the JIT (rates still climbing by half from round to round)
            for (String mode : List.of(PLAINTEXT, TLS)) {
                try (GrpcWorkloads w = new GrpcWorkloads(targets.get(mode), options.channels(), creds.get(mode))) {
                    int which = mode.equals(PLAINTEXT) ? 0 : 1;
                    w.prepare(!prepared[which]);
                    prepared[which] = true;
                    new LoadRunner(options.serviceWarmup(), Duration.ofMillis(200)).run(w.encrypt(), options.threads());
                }
                out.printf(Locale.ROOT, "warmed up the %s service for %s%n", mode, options.serviceWarmup());
            }
            LoadRunner runner = new LoadRunner(options.warmup(), options.window());
            for (int round = 1; round <= options.rounds(); round++) {
                for (String mode : List.of(PLAINTEXT, TLS, MTLS)) {
                    try (GrpcWorkloads w = new GrpcWorkloads(targets.get(mode), options.channels(), creds.get(mode))) {
                        int which = mode.equals(PLAINTEXT) ? 0 : 1;
                        w.prepare(!prepared[which]);
                        prepared[which] = true;
                        Measurement m = runner.run(w.encrypt(), options.threads());
                        rounds.computeIfAbsent(mode, k -> new ArrayList<>()).add(m);
                        out.printf(Locale.ROOT, "round %d %-15s %8.0f ops/s  p50 %.2f ms  p99 %.2f ms  errors %d%n",
                                round, mode, m.opsPerSecond(), m.p50Micros() / 1000, m.p99Micros() / 1000, m.errors());
                    }
                }
            }
            for (String mode : List.of(PLAINTEXT, TLS, MTLS)) {
                Handshakes h = connections(mode, targets.get(mode), creds.get(mode), options.connections());
                handshakes.add(h);
                out.printf(Locale.ROOT, "new connection %-15s p50 %.2f ms  p99 %.2f ms%n", mode,
                        h.percentile(50) / 1000, h.percentile(99) / 1000);
            }
        }
        Result r = new Result(machine, options, rounds, handshakes, loadStart, MachineInfo.loadAverage(),
                Instant.now());
        out.printf(Locale.ROOT, "TLS costs %.1f %% of the plaintext rate, mutual TLS %.1f %% (target: at most 15 %%)%n",
                r.costPercent(TLS), r.costPercent(MTLS));
        if (options.report() != null) {
            ReportDocument.write(options.report(), SECTION, r.section());
            out.println("report: " + options.report());
        }
        return r;
    }

    /** {@code n} new channels one after the other, each connected by its first Health/Check. */
    static Handshakes connections(String mode, String target, ChannelCredentials creds, int n) {
        double[] micros = new double[n];
        for (int i = -10; i < n; i++) {   // 10 unmeasured
            long t0 = System.nanoTime();
            ManagedChannel ch = Grpc.newChannelBuilder(target, creds).build();
            try {
                HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                        .check(HealthCheckRequest.getDefaultInstance());
                if (i >= 0) micros[i] = (System.nanoTime() - t0) / 1000.0;
            } finally {
                ch.shutdownNow();
            }
        }
        Arrays.sort(micros);
        return new Handshakes(mode, micros);
    }
}

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
 * plaintext key service and a TLS 1.3 one (client certificates verified when given; BoringSSL
 * engine), over TLS without and with a client certificate, and against a third one whose engine
 * is the JDK's JSSE (ADR 0027's comparison), in rounds of rotating order in one run, with each
 * serving process's CPU per call; and what a new connection costs: connect, handshake and one
 * Health/Check. Three key service processes of this checkout (auditing and authentication as in
 * the default suite), one development CA.
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
                  List<Handshakes> handshakes, String loadStart, String loadEnd, Instant at, String serverEngine,
                  Map<String, List<Double>> serviceCpuMicros) {
        /** The median over the rounds of the serving process's CPU per call, in microseconds. */
        double medianCpuMicros(String mode) {
            double[] v = serviceCpuMicros.getOrDefault(mode, List.of()).stream().mapToDouble(Double::doubleValue)
                    .sorted().toArray();
            return v.length == 0 ? Double.NaN : v[v.length / 2];
        }

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
                    + "channels, %s warm-up and %s measured per row; %d rounds alternating plaintext, TLS, mutual TLS, "
                    + "the order rotated each round (the median round counts), after %s of unmeasured load on each service. Three key services of this checkout (software backend, auditing on, "
                    + "authentication off): one plaintext, one TLS 1.3 with an ECDSA P-256 certificate of a "
                    + "development CA, client certificates verified when given (client-auth optional), its TLS "
                    + "engine %s (as its health answer reports, `tpmkms-info-tls`), and one the same but with "
                    + "`TPMKMS_TLS_SERVER_ENGINE=jdk`; the TLS clients (grpc-java, "
                    + "netty-shaded's BoringSSL) verify chain and host name, the mutual TLS clients also present a "
                    + "certificate. Channels are made once per row, so the rows measure the record layer, not "
                    + "handshakes.\n\n",
                    options.threads, options.channels, options.warmup.toMillis() / 1000.0 + " s",
                    options.window.toMillis() / 1000.0 + " s", options.rounds,
                    options.serviceWarmup.toMillis() / 1000.0 + " s", serverEngine));
            b.append("| transport | round ops/s | median ops/s | p50 ms | p99 ms | cost vs plaintext | service CPU "
                    + "per call (median) |\n");
            b.append("|---|---|---:|---:|---:|---:|---:|\n");
            for (String mode : MODES) {
                List<Measurement> ms = rounds.get(mode);
                Measurement median = ms.stream().sorted((x, y) -> Double.compare(x.opsPerSecond(), y.opsPerSecond()))
                        .toList().get(ms.size() / 2);
                String each = String.join(", ", ms.stream().map(m -> String.format(Locale.ROOT, "%.0f",
                        m.opsPerSecond())).toList());
                double cpu = medianCpuMicros(mode);
                double plainCpu = medianCpuMicros(PLAINTEXT);
                b.append(String.format(Locale.ROOT, "| %s | %s | %.0f | %.2f | %.2f | %s | %.0f µs%s |%n", mode, each,
                        medianOpsPerSecond(mode), median.p50Micros() / 1000, median.p99Micros() / 1000,
                        mode.equals(PLAINTEXT) ? "-" : String.format(Locale.ROOT, "%.1f %%", costPercent(mode)),
                        cpu, mode.equals(PLAINTEXT) ? "" : String.format(Locale.ROOT, " (%+.0f %%)",
                                100 * (cpu - plainCpu) / plainCpu)));
            }
            b.append(String.format(Locale.ROOT, "%nTarget: TLS costs at most 15 %% of the plaintext rate at 32 "
                    + "clients: TLS %.1f %%, mutual TLS %.1f %% in this run (BoringSSL engine); the JDK's JSSE on the "
                    + "same certificate, in the same rounds: %.1f %%.%n%n", costPercent(TLS), costPercent(MTLS),
                    costPercent(TLS_JSSE)));
            b.append("Service CPU per call: user + system time of the serving key service's process over the row "
                    + "(warm-up included) divided by the calls at the row's rate over the same time; it includes the service's "
                    + "background work (audit delivery, GC) and moves less than ops/s with what else the machine does.\n\n");
            b.append(String.format(Locale.ROOT, "A new connection: a new channel, connect, handshake and one "
                    + "Health/Check, %d times per transport, one at a time, against the same three services:%n%n",
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
    /** TLS 1.3 against a third service whose engine is the JDK's JSSE ({@code TPMKMS_TLS_SERVER_ENGINE=jdk}). */
    static final String TLS_JSSE = "TLS 1.3, JDK JSSE engine";
    static final List<String> MODES = List.of(PLAINTEXT, TLS, MTLS, TLS_JSSE);

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
        String engine = "not reported";
        Map<String, List<Double>> cpu = new LinkedHashMap<>();
        Map<String, String> jsseEnv = new LinkedHashMap<>(tlsEnv);
        jsseEnv.put("TPMKMS_TLS_SERVER_ENGINE", "jdk");
        out.println("starting a plaintext and two TLS key services (BoringSSL, JSSE) ...");
        try (ServiceProcess plain = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of());
             ServiceProcess secure = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), tlsEnv, tls);
             ServiceProcess jsse = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), jsseEnv, tls)) {
            String secureTarget = "localhost:" + secure.target().substring(secure.target().lastIndexOf(':') + 1);
            String jsseTarget = "localhost:" + jsse.target().substring(jsse.target().lastIndexOf(':') + 1);
            Map<String, String> targets = Map.of(PLAINTEXT, plain.target(), TLS, secureTarget, MTLS, secureTarget,
                    TLS_JSSE, jsseTarget);
            Map<String, ChannelCredentials> creds = Map.of(PLAINTEXT, InsecureChannelCredentials.create(),
                    TLS, tls.credentials(null), MTLS, mtls.credentials(null), TLS_JSSE, tls.credentials(null));
            Map<String, Long> pids = Map.of(PLAINTEXT, plain.pid(), TLS, secure.pid(), MTLS, secure.pid(),
                    TLS_JSSE, jsse.pid());
            boolean[] prepared = new boolean[3];
            // every JVM compiled and its database warm before anything counts: without this the first
            // rounds measured the JIT (rates still climbing by half from round to round)
            for (String mode : List.of(PLAINTEXT, TLS, TLS_JSSE)) {
                try (GrpcWorkloads w = new GrpcWorkloads(targets.get(mode), options.channels(), creds.get(mode))) {
                    int which = which(mode);
                    w.prepare(!prepared[which]);
                    prepared[which] = true;
                    new LoadRunner(options.serviceWarmup(), Duration.ofMillis(200)).run(w.encrypt(), options.threads());
                }
                out.printf(Locale.ROOT, "warmed up the %s service for %s%n", mode, options.serviceWarmup());
            }
            LoadRunner runner = new LoadRunner(options.warmup(), options.window());
            for (int round = 1; round <= options.rounds(); round++) {
                // the order rotates from round to round: a row right after the plaintext service's row
                // shares the machine with that service's audit delivery catching up (both services audit),
                // which with a fixed order always cost the TLS row and never the mutual TLS one
                List<String> order = new ArrayList<>(MODES);
                java.util.Collections.rotate(order, -((round - 1) % order.size()));
                for (String mode : order) {
                    try (GrpcWorkloads w = new GrpcWorkloads(targets.get(mode), options.channels(), creds.get(mode))) {
                        int which = which(mode);
                        w.prepare(!prepared[which]);
                        prepared[which] = true;
                        CpuMeter meter = new CpuMeter().process("service", pids.get(mode));
                        double cpu0 = meter.seconds().get("service");
                        Measurement m = runner.run(w.encrypt(), options.threads());
                        double cpuSeconds = meter.seconds().get("service") - cpu0;
                        double rowSeconds = (options.warmup().toMillis() + options.window().toMillis()) / 1000.0;
                        double micros = m.opsPerSecond() <= 0 ? Double.NaN
                                : cpuSeconds * 1e6 / (m.opsPerSecond() * rowSeconds);
                        cpu.computeIfAbsent(mode, k -> new ArrayList<>()).add(micros);
                        rounds.computeIfAbsent(mode, k -> new ArrayList<>()).add(m);
                        out.printf(Locale.ROOT, "round %d %-25s %8.0f ops/s  p50 %.2f ms  p99 %.2f ms  service CPU "
                                        + "%.0f µs/call  errors %d%n", round, mode, m.opsPerSecond(), m.p50Micros() / 1000,
                                m.p99Micros() / 1000, micros, m.errors());
                    }
                }
            }
            engine = serverEngine(targets.get(TLS), creds.get(TLS));
            out.println("TLS service's engine: " + engine);
            for (String mode : MODES) {
                Handshakes h = connections(mode, targets.get(mode), creds.get(mode), options.connections());
                handshakes.add(h);
                out.printf(Locale.ROOT, "new connection %-15s p50 %.2f ms  p99 %.2f ms%n", mode,
                        h.percentile(50) / 1000, h.percentile(99) / 1000);
            }
        }
        Result r = new Result(machine, options, rounds, handshakes, loadStart, MachineInfo.loadAverage(),
                Instant.now(), engine, cpu);
        out.printf(Locale.ROOT, "TLS costs %.1f %% of the plaintext rate, mutual TLS %.1f %%, TLS on JSSE %.1f %% "
                        + "(target: at most 15 %%); service CPU per call: plaintext %.0f µs, TLS %.0f µs, JSSE %.0f µs%n",
                r.costPercent(TLS), r.costPercent(MTLS), r.costPercent(TLS_JSSE), r.medianCpuMicros(PLAINTEXT),
                r.medianCpuMicros(TLS), r.medianCpuMicros(TLS_JSSE));
        if (options.report() != null) {
            ReportDocument.write(options.report(), SECTION, r.section());
            out.println("report: " + options.report());
        }
        return r;
    }

    private static int which(String mode) {
        return mode.equals(PLAINTEXT) ? 0 : mode.equals(TLS_JSSE) ? 2 : 1;
    }

    /** The {@code tpmkms-info-tls} header of the service's health answer: its TLS engine. */
    static String serverEngine(String target, ChannelCredentials creds) {
        ManagedChannel ch = Grpc.newChannelBuilder(target, creds).build();
        try {
            var headers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
            var trailers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
            HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .withInterceptors(io.grpc.stub.MetadataUtils.newCaptureMetadataInterceptor(headers, trailers))
                    .check(HealthCheckRequest.getDefaultInstance());
            String v = headers.get() == null ? null : headers.get().get(
                    io.grpc.Metadata.Key.of("tpmkms-info-tls", io.grpc.Metadata.ASCII_STRING_MARSHALLER));
            return v == null ? "not reported" : v;
        } finally {
            ch.shutdownNow();
        }
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

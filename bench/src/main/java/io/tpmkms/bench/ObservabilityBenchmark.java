package io.tpmkms.bench;

import com.sun.net.httpserver.HttpServer;
import io.grpc.InsecureChannelCredentials;
import io.tpmkms.devtools.ServiceProcess;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What observability costs (issue 18): Encrypt 1 KiB at 32 client threads against three key
 * services of this checkout (software backend, auditing on, authentication off) that differ only in
 * it: one with the per-call meters off and no tracing ({@code TPMKMS_METRICS_ENABLED=false}), one as
 * deployed by default (meters on, tracing off), one with meters on and every call traced, its
 * spans exported over OTLP/HTTP to a sink in this harness that takes and counts them, and one
 * tracing one call in ten. Rounds of
 * rotating order in one run; each serving process's CPU per call.
 */
final class ObservabilityBenchmark {
    static final String SECTION = "observability";
    static final String USAGE = "usage: java -jar tpmkms-bench.jar --observability [--rounds 5] [--warmup 2s]"
            + " [--measure 6s] [--threads 32] [--channels 4] [--service-warmup 20s] [--service-jar PATH]"
            + " [--report docs/benchmarks.md | --no-report]";

    static final String OFF = "meters off, tracing off";
    static final String METRICS = "meters on (default), tracing off";
    static final String TRACED = "meters on, every call traced";
    static final String SAMPLED = "meters on, 1 call in 10 traced";
    static final String NOT_EXPORTED = "meters on, every call traced, not exported";
    static final List<String> MODES = List.of(OFF, METRICS, NOT_EXPORTED, TRACED, SAMPLED);

    record Options(Path serviceJar, int rounds, Duration warmup, Duration window, int threads, int channels,
                   Path report, Duration startTimeout, Duration serviceWarmup) {
        static Options parse(String... args) {
            Path jar = Path.of("key-service/target/quarkus-app/quarkus-run.jar");
            int rounds = 5;
            Duration warmup = Duration.ofSeconds(2);
            Duration window = Duration.ofSeconds(6);
            int threads = 32;
            int channels = 4;
            Path report = Path.of("docs/benchmarks.md");
            Duration serviceWarmup = Duration.ofSeconds(20);
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--observability" -> { }
                    case "--service-jar" -> jar = Path.of(v(args, ++i, a));
                    case "--rounds" -> rounds = n(v(args, ++i, a));
                    case "--warmup" -> warmup = Benchmark.Options.duration(v(args, ++i, a));
                    case "--measure" -> window = Benchmark.Options.duration(v(args, ++i, a));
                    case "--threads" -> threads = n(v(args, ++i, a));
                    case "--channels" -> channels = n(v(args, ++i, a));
                    case "--service-warmup" -> serviceWarmup = Benchmark.Options.duration(v(args, ++i, a));
                    case "--report" -> report = Path.of(v(args, ++i, a));
                    case "--no-report" -> report = null;
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            return new Options(jar, rounds, warmup, window, threads, channels, report, Duration.ofSeconds(120),
                    serviceWarmup);
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

    /** A collector that takes OTLP/HTTP exports and counts them, without decoding them. */
    static final class Sink implements AutoCloseable {
        final HttpServer server;
        final AtomicLong requests = new AtomicLong();
        final AtomicLong bytes = new AtomicLong();

        Sink() throws java.io.IOException {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
            server.createContext("/v1/traces", exchange -> {
                try (exchange; InputStream in = exchange.getRequestBody()) {
                    bytes.addAndGet(in.readAllBytes().length);
                    requests.incrementAndGet();
                    exchange.getResponseHeaders().add("Content-Type", "application/x-protobuf");
                    exchange.sendResponseHeaders(200, -1);
                }
            });
            server.start();
        }

        String endpoint() {
            return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1/traces";
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }

    record Result(MachineInfo machine, Options options, Map<String, List<Measurement>> rounds,
                  Map<String, List<Double>> cpuMicros, String loadStart, String loadEnd, Instant at,
                  long exportRequests, long exportBytes, long tracedCalls) {
        double medianOpsPerSecond(String mode) {
            double[] v = rounds.get(mode).stream().mapToDouble(Measurement::opsPerSecond).sorted().toArray();
            return v[v.length / 2];
        }

        double medianCpuMicros(String mode) {
            double[] v = cpuMicros.getOrDefault(mode, List.of()).stream().mapToDouble(Double::doubleValue).sorted()
                    .toArray();
            return v.length == 0 ? Double.NaN : v[v.length / 2];
        }

        /** How much of the uninstrumented rate {@code mode} loses, in percent. */
        double costPercent(String mode) {
            double off = medianOpsPerSecond(OFF);
            return off <= 0 ? 0 : 100.0 * (off - medianOpsPerSecond(mode)) / off;
        }

        long errors() {
            return rounds.values().stream().flatMap(List::stream).mapToLong(Measurement::errors).sum();
        }

        String section() {
            StringBuilder b = new StringBuilder();
            b.append("## Observability: Encrypt with meters and traces on and off (`--observability`), ")
                    .append(at.toString(), 0, 10).append("\n\n");
            b.append("Run ").append(at).append(" on ").append(machine.describe()).append("; 1-minute load average ")
                    .append(loadStart).append(" at the start, ").append(loadEnd).append(" at the end.\n\n");
            b.append(String.format(Locale.ROOT, "Encrypt AES-256-GCM, 1 KiB + 16 B AAD, %d client threads over %d "
                    + "channels, %s warm-up and %s measured per row; %d rounds, the order rotated each round (the "
                    + "median round counts), after %s of unmeasured load on each service. Five key services of this "
                    + "checkout (software backend, auditing on, authentication off, plaintext gRPC) that differ only "
                    + "in observability: `TPMKMS_METRICS_ENABLED=false` (no per-call or per-TPM-command meter; "
                    + "Micrometer's own JVM and HTTP meters stay), the default (meters on, tracing off), and meters "
                    + "on with `TPMKMS_TRACING_ENDPOINT` set and every call sampled (one SERVER span per call: the "
                    + "decision is cached, the key in process), sent in batches over OTLP/HTTP (protobuf) to a sink "
                    + "in the harness that reads and counts each export without decoding it; the same with "
                    + "`TPMKMS_TRACING_SAMPLE_RATIO=0.1`; and every call traced with `TPMKMS_TRACING_EXPORTER=none` "
                    + "(spans made, attributes set, trace ids propagated, then dropped in process: the cost of "
                    + "tracing without the export).%n%n",
                    options.threads, options.channels, options.warmup.toMillis() / 1000.0 + " s",
                    options.window.toMillis() / 1000.0 + " s", options.rounds,
                    options.serviceWarmup.toMillis() / 1000.0 + " s"));
            b.append("| service | round ops/s | median ops/s | p50 ms | p99 ms | cost vs off | service CPU per call "
                    + "(median) |\n|---|---|---:|---:|---:|---:|---:|\n");
            for (String mode : MODES) {
                List<Measurement> ms = rounds.get(mode);
                Measurement median = ms.stream().sorted((x, y) -> Double.compare(x.opsPerSecond(), y.opsPerSecond()))
                        .toList().get(ms.size() / 2);
                String each = String.join(", ", ms.stream().map(m -> String.format(Locale.ROOT, "%.0f",
                        m.opsPerSecond())).toList());
                double cpu = medianCpuMicros(mode);
                double offCpu = medianCpuMicros(OFF);
                b.append(String.format(Locale.ROOT, "| %s | %s | %.0f | %.2f | %.2f | %s | %.0f µs%s |%n", mode, each,
                        medianOpsPerSecond(mode), median.p50Micros() / 1000, median.p99Micros() / 1000,
                        mode.equals(OFF) ? "-" : String.format(Locale.ROOT, "%.1f %%", costPercent(mode)), cpu,
                        mode.equals(OFF) ? "" : String.format(Locale.ROOT, " (%+.0f %%)", 100 * (cpu - offCpu) / offCpu)));
            }
            b.append(String.format(Locale.ROOT, "%nTarget: meters and tracing together cost at most 5 %% of the rate: "
                    + "%.1f %% in this run with every call traced and exported, %.1f %% traced but not exported, %.1f %% "
                    + "with one in ten traced (meters alone %.1f %%). The fully traced service exported %d requests, "
                    + "%.1f MiB, %.0f bytes per traced call (%d calls).%n%n",
                    costPercent(TRACED), costPercent(NOT_EXPORTED), costPercent(SAMPLED), costPercent(METRICS),
                    exportRequests, exportBytes / 1048576.0, tracedCalls == 0 ? 0.0 : (double) exportBytes / tracedCalls,
                    tracedCalls));
            b.append("Service CPU per call: user + system time of the serving process over the row (warm-up included) "
                    + "divided by the calls at the row's rate over the same time; it includes background work (audit "
                    + "delivery, span export, GC).\n\n");
            b.append("Reproduce: `java -jar bench/target/tpmkms-bench.jar --observability` (after `./mvnw -B package "
                    + "-DskipTests`).\n");
            return b.toString();
        }
    }

    private ObservabilityBenchmark() {}

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
            if (r.exportBytes() == 0) {
                System.err.println("tpmkms-bench: the traced service exported no span");
                return 1;
            }
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
        Map<String, List<Measurement>> rounds = new LinkedHashMap<>();
        Map<String, List<Double>> cpu = new LinkedHashMap<>();
        long tracedCalls = 0;
        out.println("starting five key services (meters off; meters on; traced, not exported; traced; one in ten) ...");
        try (Sink sink = new Sink();
             ServiceProcess off = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of("TPMKMS_METRICS_ENABLED", "false"));
             ServiceProcess metrics = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of());
             ServiceProcess traced = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of("TPMKMS_TRACING_ENDPOINT", sink.endpoint(),
                        "TPMKMS_TRACING_SAMPLE_RATIO", "1.0"));
             ServiceProcess unexported = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of("TPMKMS_TRACING_EXPORTER", "none"));
             Sink sampledSink = new Sink();
             ServiceProcess sampled = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of("TPMKMS_TRACING_ENDPOINT", sampledSink.endpoint(),
                        "TPMKMS_TRACING_SAMPLE_RATIO", "0.1"))) {
            Map<String, ServiceProcess> services = Map.of(OFF, off, METRICS, metrics, TRACED, traced,
                    SAMPLED, sampled, NOT_EXPORTED, unexported);
            for (String mode : MODES) {
                try (GrpcWorkloads w = new GrpcWorkloads(services.get(mode).target(), options.channels(),
                        InsecureChannelCredentials.create())) {
                    w.prepare(true);
                    new LoadRunner(options.serviceWarmup(), Duration.ofMillis(200)).run(w.encrypt(), options.threads());
                }
                out.printf(Locale.ROOT, "warmed up the service with %s for %s%n", mode, options.serviceWarmup());
            }
            long bytes0 = sink.bytes.get();
            long requests0 = sink.requests.get();
            LoadRunner runner = new LoadRunner(options.warmup(), options.window());
            double rowSeconds = (options.warmup().toMillis() + options.window().toMillis()) / 1000.0;
            for (int round = 1; round <= options.rounds(); round++) {
                List<String> order = new ArrayList<>(MODES);
                java.util.Collections.rotate(order, -((round - 1) % order.size()));
                for (String mode : order) {
                    try (GrpcWorkloads w = new GrpcWorkloads(services.get(mode).target(), options.channels(),
                            InsecureChannelCredentials.create())) {
                        w.prepare(false);
                        CpuMeter meter = new CpuMeter().process("service", services.get(mode).pid());
                        double cpu0 = meter.seconds().get("service");
                        Measurement m = runner.run(w.encrypt(), options.threads());
                        double cpuSeconds = meter.seconds().get("service") - cpu0;
                        double micros = m.opsPerSecond() <= 0 ? Double.NaN
                                : cpuSeconds * 1e6 / (m.opsPerSecond() * rowSeconds);
                        cpu.computeIfAbsent(mode, k -> new ArrayList<>()).add(micros);
                        rounds.computeIfAbsent(mode, k -> new ArrayList<>()).add(m);
                        if (mode.equals(TRACED)) tracedCalls += Math.round(m.opsPerSecond() * rowSeconds);
                        out.printf(Locale.ROOT, "round %d %-34s %8.0f ops/s  p50 %.2f ms  p99 %.2f ms  service CPU "
                                        + "%.0f µs/call  errors %d%n", round, mode, m.opsPerSecond(), m.p50Micros() / 1000,
                                m.p99Micros() / 1000, micros, m.errors());
                    }
                }
            }
            Thread.sleep(3_000); // the last batch of spans
            Result r = new Result(machine, options, rounds, cpu, loadStart, MachineInfo.loadAverage(), Instant.now(),
                    sink.requests.get() - requests0, sink.bytes.get() - bytes0, tracedCalls);
            out.printf(Locale.ROOT, "meters and tracing cost %.1f %% of the rate (meters alone %.1f %%; target: at "
                            + "most 5 %%; not exported %.1f %%; one in ten traced %.1f %%); service CPU per call: off %.0f µs, "
                            + "meters %.0f µs, traced %.0f µs; %d exports, %.0f bytes per traced call%n", r.costPercent(TRACED),
                    r.costPercent(METRICS), r.costPercent(NOT_EXPORTED), r.costPercent(SAMPLED), r.medianCpuMicros(OFF), r.medianCpuMicros(METRICS),
                    r.medianCpuMicros(TRACED), r.exportRequests(),
                    tracedCalls == 0 ? 0.0 : (double) r.exportBytes() / tracedCalls);
            if (options.report() != null && r.errors() == 0 && r.exportBytes() > 0) {
                ReportDocument.write(options.report(), SECTION, r.section());
                out.println("report: " + options.report());
            }
            return r;
        }
    }
}

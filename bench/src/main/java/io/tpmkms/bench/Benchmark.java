package io.tpmkms.bench;

import io.tpmkms.devtools.ServiceProcess;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Entry point of the benchmark harness: starts the packaged key service, measures the gRPC
 * workloads and the in-process baselines at each concurrency, prints the table and rewrites the
 * {@code key-service} section of {@code docs/benchmarks.md} (see that file for the method).
 *
 * <p>Exit status: 0 when every operation succeeded, 1 when any failed (the section is then not
 * written), 2 on a usage error. The service and its PostgreSQL are stopped in every case.
 *
 * <p>With {@code --tpm} it runs the TPM suite instead ({@link TpmBenchmark}, section {@code tpm}); with
 * {@code --audit} the audit suite ({@link AuditBenchmark}, section {@code audit}); with {@code --authz}
 * the authorization suite ({@link AuthzBenchmark}, section {@code authz}); with {@code --cli} the CLI's
 * start-up ({@link CliBenchmark}, section {@code cli}); with {@code --import} ImportKeyVersion against its
 * parts ({@link ImportBenchmark}, section {@code import}).
 */
public final class Benchmark {

    /** Settings of one run; paths are relative to the working directory (the repository root). */
    record Options(Path serviceJar, Duration warmup, Duration window, List<Integer> threads, int channels,
                   Path report, Duration startTimeout, List<String> workloads) {

        /**
         * The workloads of a default run, in order; {@code grpc-random} is an optional diagnostic. The
         * {@code -java} ones run against a second key service started with the native provider off
         * ({@code TPMKMS_CRYPTO_PROVIDER=java}): the same calls on the Java path.
         */
        static final List<String> DEFAULT_WORKLOADS =
                List.of("grpc-empty", "grpc-encrypt", "grpc-sign", "grpc-sign-rsa",
                        "local-aes-gcm", "local-aes-gcm-native",
                        "local-ecdsa", "local-ecdsa-bc", "local-ecdsa-native",
                        "local-rsa", "local-rsa-bc", "local-rsa-native",
                        "grpc-sign-java", "grpc-sign-rsa-java");
        static final List<String> ALL_WORKLOADS;

        static {
            List<String> all = new ArrayList<>(DEFAULT_WORKLOADS);
            all.add(1, "grpc-random");
            ALL_WORKLOADS = List.copyOf(all);
        }

        static Options defaults() {
            return new Options(Path.of("key-service/target/quarkus-app/quarkus-run.jar"),
                    Duration.ofSeconds(3), Duration.ofSeconds(8), List.of(1, 8, 32), 4,
                    Path.of("docs/benchmarks.md"), Duration.ofSeconds(90), DEFAULT_WORKLOADS);
        }

        static Options parse(String... args) {
            Options o = defaults();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--service-jar" -> o = o.with(Path.of(value(args, ++i, a)), null, null, null, null, null, false);
                    case "--warmup" -> o = o.with(null, duration(value(args, ++i, a)), null, null, null, null, false);
                    case "--measure" -> o = o.with(null, null, duration(value(args, ++i, a)), null, null, null, false);
                    case "--threads" -> o = o.with(null, null, null, threads(value(args, ++i, a)), null, null, false);
                    case "--channels" -> o = o.with(null, null, null, null, positive(value(args, ++i, a), a), null, false);
                    case "--report" -> o = o.with(null, null, null, null, null, Path.of(value(args, ++i, a)), false);
                    case "--no-report" -> o = o.with(null, null, null, null, null, null, true);
                    case "--workloads" -> o = o.withWorkloads(workloads(value(args, ++i, a)));
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            return o;
        }

        private Options with(Path jar, Duration w, Duration m, List<Integer> t, Integer c, Path r, boolean noReport) {
            return new Options(jar != null ? jar : serviceJar, w != null ? w : warmup, m != null ? m : window,
                    t != null ? t : threads, c != null ? c : channels,
                    noReport ? null : r != null ? r : report, startTimeout, workloads);
        }

        private Options withWorkloads(List<String> w) {
            return new Options(serviceJar, warmup, window, threads, channels, report, startTimeout, w);
        }

        private static List<String> workloads(String s) {
            List<String> out = new ArrayList<>();
            for (String part : s.split(",")) {
                String id = part.trim();
                if (!ALL_WORKLOADS.contains(id)) {
                    throw new IllegalArgumentException("unknown workload " + id + "; known: " + String.join(",", ALL_WORKLOADS));
                }
                out.add(id);
            }
            return List.copyOf(out);
        }

        private static String value(String[] args, int i, String option) {
            if (i >= args.length) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            return args[i];
        }

        /** {@code 500ms}, {@code 3s}, or plain seconds. */
        static Duration duration(String s) {
            String t = s.trim().toLowerCase(Locale.ROOT);
            try {
                Duration d = t.endsWith("ms") ? Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)))
                        : t.endsWith("s") ? Duration.ofMillis(Math.round(Double.parseDouble(t.substring(0, t.length() - 1)) * 1000))
                        : Duration.ofMillis(Math.round(Double.parseDouble(t) * 1000));
                if (d.isNegative()) {
                    throw new IllegalArgumentException("duration must not be negative: " + s);
                }
                return d;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a duration (e.g. 500ms, 3s): " + s);
            }
        }

        private static List<Integer> threads(String s) {
            List<Integer> out = new ArrayList<>();
            for (String part : s.split(",")) {
                out.add(positive(part.trim(), "--threads"));
            }
            return List.copyOf(out);
        }

        private static int positive(String s, String option) {
            try {
                int n = Integer.parseInt(s);
                if (n < 1) {
                    throw new NumberFormatException();
                }
                return n;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " needs positive integers, got " + s);
            }
        }
    }

    private Benchmark() {
    }

    public static void main(String[] args) {
        if (java.util.Arrays.asList(args).contains("--tpm")) {
            System.exit(TpmBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--authz")) {
            System.exit(AuthzBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--cli")) {
            System.exit(CliBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--import")) {
            System.exit(ImportBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--tls")) {
            System.exit(TlsBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--observability")) {
            System.exit(ObservabilityBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--console")) {
            System.exit(ConsoleBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--client")) {
            System.exit(ClientBenchmark.main(args));
            return;
        }
        if (java.util.Arrays.asList(args).contains("--audit")) {
            System.exit(AuditBenchmark.main(args));
            return;
        }
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("tpmkms-bench: " + e.getMessage());
            System.err.println("usage: java -jar tpmkms-bench.jar [--service-jar PATH] [--warmup 3s] [--measure 8s]"
                    + " [--threads 1,8,32] [--channels 4] [--workloads " + String.join(",", Options.ALL_WORKLOADS) + "]"
                    + " [--report docs/benchmarks.md | --no-report]");
            System.err.println("   or: " + TpmBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + AuditBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + CliBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + ImportBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + TlsBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + ObservabilityBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + ConsoleBenchmark.USAGE.substring("usage: ".length()));
            System.err.println("   or: " + ClientBenchmark.USAGE.substring("usage: ".length()));
            System.exit(2);
            return;
        }
        int status;
        try {
            Report report = run(options, System.out);
            status = report.errors() == 0 ? 0 : 1;
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            status = 1;
        }
        System.exit(status);
    }

    /**
     * Runs every workload at every concurrency and, when the run had no error and
     * {@link Options#report()} is set, rewrites the report section.
     *
     * @param progress where progress lines and the final table go
     * @throws Exception when the service cannot be started or the keys cannot be created
     */
    static Report run(Options options, java.io.PrintStream progress) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadAtStart = MachineInfo.loadAverage();
        LoadRunner runner = new LoadRunner(options.warmup(), options.window());
        List<Measurement> results = new ArrayList<>();
        progress.println("tpmkms-bench: starting " + options.serviceJar());
        // Auditing off: this suite measures the key service's own path; the cost of auditing (an
        // journal sync before every answer) is measured on its own in the audit suite.
        try (ServiceProcess service = ServiceProcess.start(options.serviceJar(), options.startTimeout(),
                java.util.Map.of("TPMKMS_AUDIT_ENABLED", "false"));
             GrpcWorkloads grpc = new GrpcWorkloads(service.target(), options.channels())) {
            progress.println("tpmkms-bench: key service pid " + service.pid() + " SERVING on " + service.target());
            measureOn(service, options, grpc, runner, results, progress,
                    options.workloads().stream().filter(w -> !w.endsWith("-java")).toList());
        }
        List<String> onJava = options.workloads().stream().filter(w -> w.endsWith("-java")).toList();
        if (!onJava.isEmpty() && results.stream().allMatch(m -> m.errors() == 0)) {
            progress.println("tpmkms-bench: starting a second key service with TPMKMS_CRYPTO_PROVIDER=java");
            try (ServiceProcess service = ServiceProcess.start(options.serviceJar(), options.startTimeout(),
                    java.util.Map.of("TPMKMS_AUDIT_ENABLED", "false", "TPMKMS_CRYPTO_PROVIDER", "java"));
                 GrpcWorkloads grpc = new GrpcWorkloads(service.target(), options.channels())) {
                progress.println("tpmkms-bench: key service (Java providers) pid " + service.pid() + " SERVING on "
                        + service.target());
                measureOn(service, options, grpc, runner, results, progress, onJava);
            }
        }
        return report(options, machine, results, loadAtStart, progress);
    }

    private static void measureOn(ServiceProcess service, Options options, GrpcWorkloads grpc, LoadRunner runner,
                                  List<Measurement> results, java.io.PrintStream progress, List<String> ids)
            throws Exception {
        boolean ok = false;
        try {
            measure(options, grpc, runner, results, progress, ids);
            ok = results.stream().allMatch(m -> m.errors() == 0);
        } finally {
            if (!ok) {
                System.err.println("tpmkms-bench: failed; key service " + (service.isAlive() ? "running" : "exited")
                        + "; its log (tail):\n" + service.logTail(30));
            }
        }
    }

    private static void measure(Options options, GrpcWorkloads grpc, LoadRunner runner, List<Measurement> results,
                                java.io.PrintStream progress, List<String> ids) throws Exception {
        grpc.prepare();
        List<Workload> workloads = new ArrayList<>();
        InProcessWorkloads.Jca conscrypt = null;
        for (String id : ids) {
            if (id.endsWith("-native") && conscrypt == null) conscrypt = InProcessWorkloads.Jca.conscrypt();
            workloads.add(switch (id) {
                case "grpc-empty" -> grpc.emptyCall();
                case "grpc-random" -> grpc.generateRandom();
                case "grpc-encrypt" -> grpc.encrypt();
                case "grpc-sign" -> grpc.sign();
                case "grpc-sign-rsa" -> grpc.signRsa();
                case "grpc-sign-java" -> grpc.sign(id, "gRPC Sign ECDSA P-256 (SHA-256), 1 KiB, Java providers", false);
                case "grpc-sign-rsa-java" ->
                        grpc.sign(id, "gRPC Sign RSA-2048 PKCS#1 (SHA-256), 1 KiB, Java providers", true);
                case "local-aes-gcm" -> InProcessWorkloads.aesGcm();
                case "local-aes-gcm-native" -> InProcessWorkloads.aesGcm(conscrypt);
                case "local-ecdsa" -> InProcessWorkloads.ecdsaP256();
                case "local-ecdsa-bc" -> InProcessWorkloads.sign(InProcessWorkloads.Jca.BOUNCY_CASTLE, false);
                case "local-ecdsa-native" -> InProcessWorkloads.sign(conscrypt, false);
                case "local-rsa" -> InProcessWorkloads.sign(InProcessWorkloads.Jca.JDK, true);
                case "local-rsa-bc" -> InProcessWorkloads.sign(InProcessWorkloads.Jca.BOUNCY_CASTLE, true);
                case "local-rsa-native" -> InProcessWorkloads.sign(conscrypt, true);
                default -> throw new IllegalArgumentException("unknown workload " + id);
            });
        }
        // One unmeasured pass over every workload first, so that the first rows (the empty call at one
        // client) do not pay for the JIT compiling the gRPC and crypto paths of both JVMs.
        int top = options.threads().stream().mapToInt(Integer::intValue).max().orElse(1);
        LoadRunner jitWarmup = new LoadRunner(Duration.ZERO, options.warmup());
        for (Workload w : workloads) {
            Measurement m = jitWarmup.run(w, top);
            if (m.errors() > 0) {
                throw new IllegalStateException(w.description() + " failed during warm-up: " + m.firstError());
            }
        }
        progress.println("tpmkms-bench: warmed up every workload at " + top + " clients for "
                + options.warmup().toMillis() + " ms");
        for (Workload w : workloads) {
            for (int n : options.threads()) {
                Measurement m = runner.run(w, n);
                results.add(m);
                progress.printf(Locale.ROOT,
                        "tpmkms-bench: %-45s %3d clients %,10.0f ops/s  p50 %8s µs  p99 %8s µs%s%n",
                        m.description(), n, m.opsPerSecond(), Report.micros(m.p50Micros()), Report.micros(m.p99Micros()),
                        m.errors() == 0 ? "" : "  ERRORS " + m.errors() + " (first: " + m.firstError() + ")");
            }
        }
    }

    private static Report report(Options options, MachineInfo machine, List<Measurement> results, String loadAtStart,
                                 java.io.PrintStream progress) throws java.io.IOException {
        Report report = new Report(machine, options.warmup(), options.window(), options.channels(),
                options.threads(), List.copyOf(results), loadAtStart, MachineInfo.loadAverage());
        progress.println();
        progress.print(report.table());
        progress.println();
        progress.print(report.providerTable());
        progress.println();
        progress.println(report.verdict());
        progress.println(report.otherRatios());
        if (report.errors() > 0) {
            progress.println("tpmkms-bench: " + report.errors() + " operations failed; the report is not written.");
        } else if (options.report() != null && !options.workloads().equals(Options.DEFAULT_WORKLOADS)) {
            progress.println("tpmkms-bench: custom --workloads; the report is not written.");
        } else if (options.report() != null) {
            ReportDocument.write(options.report(), Report.SECTION, report.section());
            progress.println("tpmkms-bench: wrote section '" + Report.SECTION + "' of " + options.report());
        }
        return report;
    }
}

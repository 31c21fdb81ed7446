package io.tpmkms.bench;

import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.protection.tpm.Swtpm;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The TPM suite ({@code --tpm}): on one fresh swtpm, in this order, never two clients at once
 * (swtpm serves one connection at a time):
 * <ol>
 *   <li>a {@code tpm2_sign} loop, one process per signature ({@link Tpm2SignLoop});
 *   <li>the raw TPM rate: {@link RawTpmWorkloads}, the TPM backend in this JVM on its own connection,
 *       closed afterwards;
 *   <li>the key service started on that swtpm ({@code TPMKMS_BACKEND_TPM_TRANSPORT=unix}), with TPM
 *       keys created through the API, measured over gRPC ({@link TpmGrpcWorkloads}).
 * </ol>
 * Then prints the table and rewrites the {@code tpm} section of {@code docs/benchmarks.md} when no
 * operation failed.
 */
final class TpmBenchmark {

    static final String SECTION = "tpm";

    /**
     * Alternating rounds of the HMAC-session (NON_EXPORTABLE key) and the policy-session (DUPLICABLE key) ECDSA workloads (raw at one
     * thread, gRPC at 8 clients): the verdict on policy sessions reads their medians, because the
     * machine's noise between two rows run a minute apart is larger than the difference measured.
     */
    static final int ALTERNATING_ROUNDS = 3;
    static final int ALTERNATING_GRPC_CLIENTS = 8;

    /**
     * Settings of a TPM run.
     *
     * @param rawThreads  thread counts of the raw (in-process) rows
     * @param grpcThreads client counts of the gRPC rows
     * @param tpm2SignOps signatures of the tpm2_sign loop; 0 skips it
     */
    record Options(Path serviceJar, Duration warmup, Duration window, List<Integer> rawThreads,
                   List<Integer> grpcThreads, int channels, int tpm2SignOps, Path report, Duration startTimeout) {

        static Options defaults() {
            return new Options(Path.of("key-service/target/quarkus-app/quarkus-run.jar"),
                    Duration.ofSeconds(1), Duration.ofSeconds(5), List.of(1, 8), List.of(1, 8, 32), 4, 100,
                    Path.of("docs/benchmarks.md"), Duration.ofSeconds(90));
        }

        static Options parse(String... args) {
            Options o = defaults();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--tpm" -> { }
                    case "--service-jar" -> o = new Options(Path.of(value(args, ++i, a)), o.warmup, o.window,
                            o.rawThreads, o.grpcThreads, o.channels, o.tpm2SignOps, o.report, o.startTimeout);
                    case "--warmup" -> o = new Options(o.serviceJar, Benchmark.Options.duration(value(args, ++i, a)),
                            o.window, o.rawThreads, o.grpcThreads, o.channels, o.tpm2SignOps, o.report, o.startTimeout);
                    case "--measure" -> o = new Options(o.serviceJar, o.warmup, Benchmark.Options.duration(value(args, ++i, a)),
                            o.rawThreads, o.grpcThreads, o.channels, o.tpm2SignOps, o.report, o.startTimeout);
                    case "--raw-threads" -> o = new Options(o.serviceJar, o.warmup, o.window, ints(value(args, ++i, a), a),
                            o.grpcThreads, o.channels, o.tpm2SignOps, o.report, o.startTimeout);
                    case "--threads" -> o = new Options(o.serviceJar, o.warmup, o.window, o.rawThreads,
                            ints(value(args, ++i, a), a), o.channels, o.tpm2SignOps, o.report, o.startTimeout);
                    case "--channels" -> o = new Options(o.serviceJar, o.warmup, o.window, o.rawThreads, o.grpcThreads,
                            ints(value(args, ++i, a), a).get(0), o.tpm2SignOps, o.report, o.startTimeout);
                    case "--tpm2-sign-ops" -> o = new Options(o.serviceJar, o.warmup, o.window, o.rawThreads,
                            o.grpcThreads, o.channels, nonNegative(value(args, ++i, a), a), o.report, o.startTimeout);
                    case "--report" -> o = new Options(o.serviceJar, o.warmup, o.window, o.rawThreads, o.grpcThreads,
                            o.channels, o.tpm2SignOps, Path.of(value(args, ++i, a)), o.startTimeout);
                    case "--no-report" -> o = new Options(o.serviceJar, o.warmup, o.window, o.rawThreads, o.grpcThreads,
                            o.channels, o.tpm2SignOps, null, o.startTimeout);
                    default -> throw new IllegalArgumentException("unknown option for --tpm: " + a);
                }
            }
            return o;
        }

        private static String value(String[] args, int i, String option) {
            if (i >= args.length) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            return args[i];
        }

        private static List<Integer> ints(String s, String option) {
            List<Integer> out = new ArrayList<>();
            for (String part : s.split(",")) {
                int n = nonNegative(part.trim(), option);
                if (n < 1) {
                    throw new IllegalArgumentException(option + " needs positive integers, got " + s);
                }
                out.add(n);
            }
            return List.copyOf(out);
        }

        private static int nonNegative(String s, String option) {
            try {
                int n = Integer.parseInt(s.trim());
                if (n < 0) {
                    throw new NumberFormatException();
                }
                return n;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " needs a non-negative integer, got " + s);
            }
        }
    }

    static final String USAGE = "usage: java -jar tpmkms-bench.jar --tpm [--service-jar PATH] [--warmup 1s] [--measure 5s]"
            + " [--raw-threads 1,8] [--threads 1,8,32] [--channels 4] [--tpm2-sign-ops 100]"
            + " [--report docs/benchmarks.md | --no-report]";

    private TpmBenchmark() {
    }

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
            TpmReport report = run(options, System.out);
            return report.errors() == 0 ? 0 : 1;
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            return 1;
        }
    }

    /**
     * Runs the suite and, when no operation failed and {@link Options#report()} is set, rewrites the
     * {@code tpm} section.
     *
     * @throws Exception when swtpm, the raw backend or the service cannot be started, or keys cannot be made
     */
    static TpmReport run(Options options, PrintStream progress) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadAtStart = MachineInfo.loadAverage();
        LoadRunner runner = new LoadRunner(options.warmup(), options.window());
        List<Measurement> results = new ArrayList<>();
        List<Measurement> alternating = new ArrayList<>();
        String swtpmVersion = swtpmVersion();
        try (Swtpm swtpm = Swtpm.start()) {
            progress.println("tpmkms-bench: swtpm (" + swtpmVersion + ") on " + swtpm.socket());

            if (options.tpm2SignOps() > 0) {
                progress.println("tpmkms-bench: tpm2_sign loop, " + options.tpm2SignOps() + " processes");
                Measurement m = Tpm2SignLoop.run(swtpm.tcti(), options.tpm2SignOps());
                results.add(m);
                print(progress, m);
            }

            progress.println("tpmkms-bench: raw TPM backend in-process (creating EC, RSA-2048, AES keys)");
            try (RawTpmWorkloads raw = new RawTpmWorkloads(swtpm.config())) {
                for (Workload w : List.of(raw.ecdsa(), raw.ecdsaDuplicable(), raw.ecdsaPcrBound(), raw.rsa(), raw.aesGcm())) {
                    for (int n : options.rawThreads()) {
                        Measurement m = runner.run(w, n);
                        results.add(m);
                        print(progress, m);
                    }
                }
                for (int round = 0; round < ALTERNATING_ROUNDS; round++) {
                    for (Workload w : List.of(raw.ecdsa(), raw.ecdsaDuplicable())) {
                        Measurement m = runner.run(w, 1);
                        alternating.add(m);
                        progress.print("tpmkms-bench: round " + (round + 1) + ": ");
                        print(progress, m);
                    }
                }
                for (Workload w : List.of(raw.export(), raw.importDuplicate())) { // one client: the TPM is the limit
                    Measurement m = runner.run(w, 1);
                    results.add(m);
                    print(progress, m);
                }
            } // closes the connection: the swtpm is free for the service

            // Auditing off: this suite compares the service's TPM path with the raw TPM; what auditing
            // costs (a journal sync before every answer) is measured on its own in the audit suite.
            Map<String, String> env = Map.of(
                    "TPMKMS_BACKEND_TPM_TRANSPORT", "unix",
                    "TPMKMS_BACKEND_TPM_PATH", swtpm.socket().toString(),
                    "TPMKMS_AUDIT_ENABLED", "false");
            progress.println("tpmkms-bench: starting " + options.serviceJar() + " on the swtpm");
            try (ServiceProcess service = ServiceProcess.start(options.serviceJar(), options.startTimeout(), env);
                 TpmGrpcWorkloads grpc = new TpmGrpcWorkloads(service.target(), options.channels())) {
                progress.println("tpmkms-bench: key service pid " + service.pid() + " SERVING on " + service.target());
                boolean ok = false;
                try {
                    grpc.prepare();
                    List<Workload> workloads = List.of(grpc.ecdsa(), grpc.ecdsaDuplicable(), grpc.rsa(), grpc.aesGcm());
                    int top = options.grpcThreads().stream().mapToInt(Integer::intValue).max().orElse(1);
                    LoadRunner jitWarmup = new LoadRunner(Duration.ZERO, options.warmup());
                    for (Workload w : workloads) {
                        Measurement m = jitWarmup.run(w, top);
                        if (m.errors() > 0) {
                            throw new IllegalStateException(w.description() + " failed during warm-up: " + m.firstError());
                        }
                    }
                    for (Workload w : workloads) {
                        for (int n : options.grpcThreads()) {
                            Measurement m = runner.run(w, n);
                            results.add(m);
                            print(progress, m);
                        }
                    }
                    for (int round = 0; round < ALTERNATING_ROUNDS; round++) {
                        for (Workload w : List.of(grpc.ecdsa(), grpc.ecdsaDuplicable())) {
                            Measurement m = runner.run(w, ALTERNATING_GRPC_CLIENTS);
                            alternating.add(m);
                            progress.print("tpmkms-bench: round " + (round + 1) + ": ");
                            print(progress, m);
                        }
                    }
                    ok = results.stream().allMatch(m -> m.errors() == 0)
                            && alternating.stream().allMatch(m -> m.errors() == 0);
                } finally {
                    if (!ok) {
                        System.err.println("tpmkms-bench: failed; key service "
                                + (service.isAlive() ? "running" : "exited") + "; its log (tail):\n" + service.logTail(30));
                    }
                }
            }
        }
        TpmReport report = new TpmReport(machine, swtpmVersion, options, List.copyOf(results), List.copyOf(alternating),
                loadAtStart, MachineInfo.loadAverage());
        progress.println();
        progress.print(report.table());
        progress.println();
        progress.println(report.verdict());
        progress.println(report.policyVerdict());
        progress.println(report.otherRatios());
        if (report.errors() > 0) {
            progress.println("tpmkms-bench: " + report.errors() + " operations failed; the report is not written.");
        } else if (options.report() != null) {
            ReportDocument.write(options.report(), SECTION, report.section());
            progress.println("tpmkms-bench: wrote section '" + SECTION + "' of " + options.report());
        }
        return report;
    }

    private static void print(PrintStream progress, Measurement m) {
        progress.printf(Locale.ROOT,
                "tpmkms-bench: %-50s %3d clients %,10.0f ops/s  p50 %8s µs  p99 %8s µs%s%n",
                m.description(), m.threads(), m.opsPerSecond(), Report.micros(m.p50Micros()), Report.micros(m.p99Micros()),
                m.errors() == 0 ? "" : "  ERRORS " + m.errors() + " (first: " + m.firstError() + ")");
    }

    /** "swtpm 0.7.1" from {@code swtpm --version}, or "swtpm" when it does not answer. */
    static String swtpmVersion() {
        try {
            String out = Swtpm.run(List.of("swtpm", "--version"), 10);
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("version (\\S+?),?\\s").matcher(out);
            return m.find() ? "swtpm " + m.group(1) : "swtpm";
        } catch (Exception e) {
            return "swtpm";
        }
    }
}

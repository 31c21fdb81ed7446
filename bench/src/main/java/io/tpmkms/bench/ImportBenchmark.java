package io.tpmkms.bench;

import io.tpmkms.bench.ImportBaselines.Material;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The import suite ({@code --import}): what ImportKeyVersion costs through gRPC, next to what its
 * parts cost without the service, all in one run on one fresh swtpm, never two clients at once:
 * <ol>
 *   <li>the JCA baseline in this JVM ({@link ImportBaselines#jca}) for AES-256 and EC P-256;
 *   <li>the raw TPM baseline ({@link ImportBaselines#rawTpm}), the TPM backend in this JVM on its own
 *       connection, closed afterwards;
 *   <li>the key service started on that swtpm: ImportKeyVersion of AES-256 and EC P-256 into
 *       import-only keys, through a SOFTWARE and a TPM import job ({@link ImportGrpc}).
 * </ol>
 * Each row is {@code warmup} unmeasured then {@code iterations} measured calls, one at a time; it
 * reports p50/p90/p99 and the rate (iterations over their summed time). A service that answers
 * UNIMPLEMENTED to the import RPCs is reported and skipped, not failed; the section is then not
 * written (its service rows would be missing).
 */
final class ImportBenchmark {

    static final String SECTION = "import";
    static final String NOT_IMPLEMENTED = "import: service does not implement ImportKeyVersion yet";
    static final String USAGE = "usage: java -jar tpmkms-bench.jar --import [--iterations 100] [--warmup-iterations 20]"
            + " [--service-jar PATH] [--report docs/benchmarks.md | --no-report]";

    record Options(Path serviceJar, int warmup, int iterations, Path report, Duration startTimeout) {

        static Options defaults() {
            return new Options(Path.of("key-service/target/quarkus-app/quarkus-run.jar"), 20, 100,
                    Path.of("docs/benchmarks.md"), Duration.ofSeconds(90));
        }

        static Options parse(String... args) {
            Options o = defaults();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--import" -> { }
                    case "--service-jar" -> o = new Options(Path.of(value(args, ++i, a)), o.warmup, o.iterations,
                            o.report, o.startTimeout);
                    case "--warmup-iterations" -> o = new Options(o.serviceJar, count(value(args, ++i, a), a, 0),
                            o.iterations, o.report, o.startTimeout);
                    case "--iterations" -> o = new Options(o.serviceJar, o.warmup, count(value(args, ++i, a), a, 1),
                            o.report, o.startTimeout);
                    case "--report" -> o = new Options(o.serviceJar, o.warmup, o.iterations, Path.of(value(args, ++i, a)),
                            o.startTimeout);
                    case "--no-report" -> o = new Options(o.serviceJar, o.warmup, o.iterations, null, o.startTimeout);
                    default -> throw new IllegalArgumentException("unknown option for --import: " + a);
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

        private static int count(String s, String option, int min) {
            try {
                int n = Integer.parseInt(s.trim());
                if (n < min) {
                    throw new NumberFormatException();
                }
                return n;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " needs an integer >= " + min + ", got " + s);
            }
        }
    }

    /** The service answered UNIMPLEMENTED to an import RPC. */
    static final class NotImplemented extends RuntimeException {
        NotImplemented(Throwable cause) {
            super(cause.getMessage(), cause);
        }
    }

    /** One row: measured latencies in milliseconds, in call order, and the failures. */
    record Row(String label, List<Double> millis, int failures, String firstFailure) {

        double percentile(double p) {
            double[] sorted = millis.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            if (sorted.length == 0) {
                return Double.NaN;
            }
            int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
            return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
        }

        /** Calls per second over the summed time of the measured calls (one call at a time). */
        double opsPerSecond() {
            double total = millis.stream().mapToDouble(Double::doubleValue).sum();
            return total <= 0 ? 0 : millis.size() * 1000.0 / total;
        }
    }

    /** Times calls one by one; the first {@code warmup} calls are run but not recorded. */
    static final class Timer {
        interface Action {
            void run() throws Exception;
        }

        private final String label;
        private int warmupLeft;
        private final List<Double> millis = new ArrayList<>();
        private int failures;
        private String firstFailure;

        Timer(String label, int warmup) {
            this.label = label;
            this.warmupLeft = warmup;
        }

        void time(Action action) {
            long t0 = System.nanoTime();
            try {
                action.run();
            } catch (NotImplemented e) {
                throw e;
            } catch (Exception e) {
                fail(LoadRunner.describe(e));
                return;
            }
            double ms = (System.nanoTime() - t0) / 1e6;
            if (warmupLeft > 0) {
                warmupLeft--;
            } else {
                millis.add(ms);
            }
        }

        void fail(String description) {
            failures++;
            if (firstFailure == null) {
                firstFailure = description;
            }
        }

        Row row() {
            return new Row(label, List.copyOf(millis), failures, firstFailure);
        }
    }

    /**
     * @param serviceSkipped why the service rows are missing, or {@code null} when they were measured
     */
    record Result(MachineInfo machine, String swtpmVersion, Options options, List<Row> rows, String serviceSkipped,
                  String loadAtStart, String loadAtEnd) {

        int failures() {
            return rows.stream().mapToInt(Row::failures).sum();
        }

        String table() {
            StringBuilder b = new StringBuilder("| operation | p50 ms | p90 ms | p99 ms | ops/s |\n|---|---:|---:|---:|---:|\n");
            for (Row r : rows) {
                b.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %,.0f |%n", r.label(),
                        ms(r.percentile(50)), ms(r.percentile(90)), ms(r.percentile(99)), r.opsPerSecond()));
            }
            return b.toString();
        }

        /** The service's p50 against the raw TPM's, per material, where both rows exist. */
        String verdict() {
            StringBuilder b = new StringBuilder();
            for (Material m : Material.values()) {
                Row raw = find("raw TPM", m);
                Row grpc = find("gRPC ImportKeyVersion " + m.label + ", TPM", m);
                Row sw = find("gRPC ImportKeyVersion " + m.label + ", SOFTWARE", m);
                Row jca = find("JCA", m);
                if (raw != null && grpc != null) {
                    b.append(String.format(Locale.ROOT, "%s on TPM: gRPC p50 %s ms = raw TPM p50 %s ms + %s ms. ",
                            m.label, ms(grpc.percentile(50)), ms(raw.percentile(50)),
                            ms(grpc.percentile(50) - raw.percentile(50))));
                }
                if (jca != null && sw != null) {
                    b.append(String.format(Locale.ROOT, "%s on SOFTWARE: gRPC p50 %s ms = JCA p50 %s ms + %s ms. ",
                            m.label, ms(sw.percentile(50)), ms(jca.percentile(50)),
                            ms(sw.percentile(50) - jca.percentile(50))));
                }
            }
            return b.length() == 0 ? "No service rows: " + serviceSkipped + "." : b.toString().trim();
        }

        private Row find(String prefix, Material m) {
            return rows.stream().filter(r -> r.label().startsWith(prefix) && r.label().contains(m.label))
                    .findFirst().orElse(null);
        }

        String section() {
            return "## Import (ImportKeyVersion against its parts)\n\n"
                    + "Run " + machine.date() + " on " + machine.describe() + ", " + swtpmVersion + " on a UNIX "
                    + "socket (fresh state); 1-minute load average " + loadAtStart + " at the start, " + loadAtEnd
                    + " at the end.\n\n"
                    + "Import method RSA_OAEP_3072_SHA256_AES_256. Every row imports fresh material (32 random bytes, "
                    + "or a JCA P-256 key as PKCS#8) wrapped client-side with `ImportWrapping` before the timing; "
                    + String.format(Locale.ROOT, "%d unmeasured then %d measured calls, one at a time; ",
                    options.warmup(), options.iterations())
                    + "ops/s is the measured calls over their summed time. In order, on the same swtpm, never two "
                    + "clients at once: the JCA rows (RSA-OAEP-3072 decrypt, AES-KWP unwrap, parse; no TPM); the raw "
                    + "TPM rows (`TpmKeyProtectionBackend` in the benchmark JVM: TPM2_RSA_Decrypt with a TPM-generated "
                    + "RSA_DECRYPT_OAEP_3072_SHA256 key, AES-KWP in software, then " + ImportBaselines.TPM_CREATE_STEP_LABEL
                    + "); then the key service on the swtpm, auditing off, one import job per protection level "
                    + "(created with `wait`), import-only keys, ImportKeyVersion over gRPC. After the calls the "
                    + "EC key's last version must have the material's public key and the AES key's ciphertext must "
                    + "decrypt locally with the material.\n\n"
                    + table() + "\n" + verdict() + "\n\n"
                    + "Reproduce: `java -jar bench/target/tpmkms-bench.jar --import` (after `./mvnw -B package -DskipTests`).\n";
        }

        private static String ms(double v) {
            return Double.isNaN(v) ? "-" : v < 10 ? String.format(Locale.ROOT, "%.2f", v) : String.format(Locale.ROOT, "%.1f", v);
        }
    }

    private ImportBenchmark() {
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
            Result r = run(options, System.out);
            return r.failures() == 0 ? 0 : 1;
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            return 1;
        }
    }

    /**
     * Runs the suite and, when nothing failed, the service rows exist and {@link Options#report()}
     * is set, rewrites the {@code import} section.
     *
     * @throws Exception when swtpm, the raw backend or the service cannot be started
     */
    static Result run(Options options, PrintStream progress) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadAtStart = MachineInfo.loadAverage();
        List<Row> rows = new ArrayList<>();
        String skipped = null;
        String swtpmVersion = TpmBenchmark.swtpmVersion();
        // One unmeasured pass first, so that the first JCA row does not pay for the JIT compiling RSA and KWP.
        ImportBaselines.jca(Material.AES_256, 0, Math.max(20, options.warmup() * 3));
        for (Material m : Material.values()) {
            rows.add(print(progress, ImportBaselines.jca(m, options.warmup(), options.iterations())));
        }
        try (Swtpm swtpm = Swtpm.start()) {
            progress.println("tpmkms-bench: swtpm (" + swtpmVersion + ") on " + swtpm.socket());
            for (Row r : ImportBaselines.rawTpm(swtpm.config(), options.warmup(), options.iterations())) {
                rows.add(print(progress, r));
            } // the backend's connection is closed: the swtpm is free for the service

            Map<String, String> env = Map.of(
                    "TPMKMS_BACKEND_TPM_TRANSPORT", "unix",
                    "TPMKMS_BACKEND_TPM_PATH", swtpm.socket().toString(),
                    "TPMKMS_AUDIT_ENABLED", "false");
            progress.println("tpmkms-bench: starting " + options.serviceJar() + " on the swtpm");
            try (ServiceProcess service = ServiceProcess.start(options.serviceJar(), options.startTimeout(), env);
                 ImportGrpc grpc = new ImportGrpc(service.target())) {
                progress.println("tpmkms-bench: key service pid " + service.pid() + " SERVING on " + service.target());
                boolean ok = false;
                try {
                    skipped = measureService(grpc, options, rows, progress);
                    ok = rows.stream().allMatch(r -> r.failures() == 0);
                } finally {
                    if (!ok) {
                        System.err.println("tpmkms-bench: failed; key service " + (service.isAlive() ? "running" : "exited")
                                + "; its log (tail):\n" + service.logTail(30));
                    }
                }
            }
        }
        Result result = new Result(machine, swtpmVersion, options, List.copyOf(rows), skipped, loadAtStart,
                MachineInfo.loadAverage());
        progress.println();
        progress.print(result.table());
        progress.println();
        progress.println(result.verdict());
        if (result.failures() > 0) {
            progress.println("tpmkms-bench: " + result.failures() + " operations failed; the report is not written.");
        } else if (skipped != null) {
            progress.println("tpmkms-bench: service rows skipped; the report is not written.");
        } else if (options.report() != null) {
            ReportDocument.write(options.report(), SECTION, result.section());
            progress.println("tpmkms-bench: wrote section '" + SECTION + "' of " + options.report());
        }
        return result;
    }

    /** The service rows; returns why they were skipped, or {@code null} when measured. */
    private static String measureService(ImportGrpc grpc, Options options, List<Row> rows, PrintStream progress)
            throws Exception {
        try {
            for (ProtectionLevel level : List.of(ProtectionLevel.SOFTWARE, ProtectionLevel.TPM)) {
                ImportJob job = grpc.probe(level);
                if (job == null) {
                    progress.println(NOT_IMPLEMENTED);
                    return NOT_IMPLEMENTED;
                }
                progress.println("tpmkms-bench: import job " + job.getName() + " ACTIVE (" + level + ")");
                for (Material m : Material.values()) {
                    rows.add(print(progress, grpc.measure(job, level, m, options.warmup(), options.iterations())));
                }
            }
            return null;
        } catch (NotImplemented e) {
            progress.println(NOT_IMPLEMENTED);
            return NOT_IMPLEMENTED;
        }
    }

    private static Row print(PrintStream progress, Row r) {
        progress.printf(Locale.ROOT, "tpmkms-bench: %-100s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms %,8.0f ops/s%s%n",
                r.label(), r.percentile(50), r.percentile(90), r.percentile(99), r.opsPerSecond(),
                r.failures() == 0 ? "" : "  FAILURES " + r.failures() + " (first: " + r.firstFailure() + ")");
        return r;
    }
}

package io.tpmkms.bench;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * The audit suite ({@code --audit}), in one run on one machine:
 * <ol>
 *   <li>starts the packaged audit service with a fresh data directory (its own embedded PostgreSQL);
 *   <li>append throughput: client threads sending AppendEvents batches for a timed window (the
 *       service answers after COMMIT, so every acknowledged record is durable);
 *   <li>grows the chain to {@link Options#verifyRecords()} records through the same path, then times
 *       VerifyChain over the whole chain, twice;
 *   <li>starts the packaged key service with auditing off, measures Encrypt of 1 KiB; stops it; starts
 *       it again with auditing on, forwarding its outbox to the audit service, and measures the same;
 *       then waits until the audit service holds the key service's records and checks that it has one
 *       successful Encrypt record per Encrypt the key service acknowledged.
 * </ol>
 * Then prints the tables and rewrites the {@code audit} section of {@code docs/benchmarks.md} when
 * nothing failed.
 */
final class AuditBenchmark {

    static final String SECTION = "audit";

    /**
     * Settings of an audit run.
     *
     * @param appendThreads  client counts of the append rows; the highest also grows the chain
     * @param batch          events per AppendEvents request
     * @param verifyRecords  chain length to grow to before VerifyChain
     * @param encryptThreads client counts of the Encrypt rows (auditing off and on)
     */
    record Options(Path auditJar, Path keyJar, Duration warmup, Duration window, List<Integer> appendThreads,
                   int batch, long verifyRecords, List<Integer> encryptThreads, int channels, Path report,
                   Duration startTimeout) {

        static Options defaults() {
            return new Options(Path.of("audit-service/target/quarkus-app/quarkus-run.jar"),
                    Path.of("key-service/target/quarkus-app/quarkus-run.jar"),
                    Duration.ofSeconds(2), Duration.ofSeconds(8), List.of(8), 250, 1_000_000, List.of(8, 32), 4,
                    Path.of("docs/benchmarks.md"), Duration.ofSeconds(120));
        }

        static Options parse(String... args) {
            Options o = defaults();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--audit" -> { }
                    case "--audit-jar" -> o = new Options(Path.of(value(args, ++i, a)), o.keyJar, o.warmup, o.window,
                            o.appendThreads, o.batch, o.verifyRecords, o.encryptThreads, o.channels, o.report, o.startTimeout);
                    case "--service-jar" -> o = new Options(o.auditJar, Path.of(value(args, ++i, a)), o.warmup, o.window,
                            o.appendThreads, o.batch, o.verifyRecords, o.encryptThreads, o.channels, o.report, o.startTimeout);
                    case "--warmup" -> o = new Options(o.auditJar, o.keyJar, Benchmark.Options.duration(value(args, ++i, a)),
                            o.window, o.appendThreads, o.batch, o.verifyRecords, o.encryptThreads, o.channels, o.report,
                            o.startTimeout);
                    case "--measure" -> o = new Options(o.auditJar, o.keyJar, o.warmup,
                            Benchmark.Options.duration(value(args, ++i, a)), o.appendThreads, o.batch, o.verifyRecords,
                            o.encryptThreads, o.channels, o.report, o.startTimeout);
                    case "--append-threads" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window,
                            ints(value(args, ++i, a), a), o.batch, o.verifyRecords, o.encryptThreads, o.channels, o.report,
                            o.startTimeout);
                    case "--batch" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window, o.appendThreads,
                            (int) positive(value(args, ++i, a), a), o.verifyRecords, o.encryptThreads, o.channels,
                            o.report, o.startTimeout);
                    case "--verify-records" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window, o.appendThreads,
                            o.batch, positive(value(args, ++i, a), a), o.encryptThreads, o.channels, o.report,
                            o.startTimeout);
                    case "--threads" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window, o.appendThreads,
                            o.batch, o.verifyRecords, ints(value(args, ++i, a), a), o.channels, o.report, o.startTimeout);
                    case "--channels" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window, o.appendThreads,
                            o.batch, o.verifyRecords, o.encryptThreads, (int) positive(value(args, ++i, a), a), o.report,
                            o.startTimeout);
                    case "--report" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window, o.appendThreads,
                            o.batch, o.verifyRecords, o.encryptThreads, o.channels, Path.of(value(args, ++i, a)),
                            o.startTimeout);
                    case "--no-report" -> o = new Options(o.auditJar, o.keyJar, o.warmup, o.window, o.appendThreads,
                            o.batch, o.verifyRecords, o.encryptThreads, o.channels, null, o.startTimeout);
                    default -> throw new IllegalArgumentException("unknown option for --audit: " + a);
                }
            }
            if (o.batch > 1000) {
                throw new IllegalArgumentException("--batch is at most 1000 (the audit service's limit per request)");
            }
            return o;
        }

        int topAppendThreads() {
            return appendThreads.stream().mapToInt(Integer::intValue).max().orElse(1);
        }

        int topEncryptThreads() {
            return encryptThreads.stream().mapToInt(Integer::intValue).max().orElse(1);
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
                out.add((int) positive(part.trim(), option));
            }
            return List.copyOf(out);
        }

        private static long positive(String s, String option) {
            try {
                long n = Long.parseLong(s.trim().replace("_", ""));
                if (n < 1) {
                    throw new NumberFormatException();
                }
                return n;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " needs positive integers, got " + s);
            }
        }
    }

    static final String USAGE = "usage: java -jar tpmkms-bench.jar --audit [--audit-jar PATH] [--service-jar PATH]"
            + " [--warmup 2s] [--measure 8s] [--append-threads 8] [--batch 250] [--verify-records 1000000]"
            + " [--threads 8,32] [--channels 4] [--report docs/benchmarks.md | --no-report]";

    /** Longest wait for the key service's outbox to reach the audit service after the last window. */
    private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(120);
    private static final Duration DRAIN_QUIET = Duration.ofMillis(1500);

    private AuditBenchmark() {
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
            AuditReport report = run(options, System.out);
            return report.failures().isEmpty() ? 0 : 1;
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            return 1;
        }
    }

    /**
     * Runs the suite and, when nothing failed and {@link Options#report()} is set, rewrites the
     * {@code audit} section.
     *
     * @throws Exception when a service cannot be started or a setup call fails
     */
    static AuditReport run(Options options, PrintStream progress) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadAtStart = MachineInfo.loadAverage();
        LoadRunner runner = new LoadRunner(options.warmup(), options.window());
        List<Measurement> append = new ArrayList<>();
        List<AuditWorkloads.Verification> verifications = new ArrayList<>();
        List<Measurement> encryptOff = new ArrayList<>();
        List<Measurement> encryptOn = new ArrayList<>();
        AuditWorkloads.Growth growth;
        AuditReport.Reconciliation reconciliation;
        String loadAfterAppend;

        progress.println("tpmkms-bench: starting " + options.auditJar());
        try (ServiceProcess audit = ServiceProcess.start(ServiceProcess.AUDIT_SERVICE, options.auditJar(),
                options.startTimeout(), Map.of());
             AuditWorkloads workloads = new AuditWorkloads(audit.target(), options.channels(), options.batch())) {
            progress.println("tpmkms-bench: audit service pid " + audit.pid() + " SERVING on " + audit.target());
            boolean ok = false;
            try {
                // (1) append throughput
                Workload appendWorkload = workloads.append();
                int top = options.topAppendThreads();
                Measurement jit = new LoadRunner(Duration.ZERO, options.warmup()).run(appendWorkload, top);
                if (jit.errors() > 0) {
                    throw new IllegalStateException("AppendEvents failed during warm-up: " + jit.firstError());
                }
                progress.println("tpmkms-bench: warmed up AppendEvents at " + top + " clients, chain now "
                        + workloads.head() + " records");
                for (int n : options.appendThreads()) {
                    Measurement m = runner.run(appendWorkload, n);
                    append.add(m);
                    progress.printf(Locale.ROOT, "tpmkms-bench: %-50s %3d clients %,10.0f records/s (%,.0f requests/s)"
                                    + "  p50 %s µs  p99 %s µs%s%n",
                            m.description(), n, m.opsPerSecond() * options.batch(), m.opsPerSecond(),
                            Report.micros(m.p50Micros()), Report.micros(m.p99Micros()), errors(m));
                }

                // (2) grow to the verify size, then verify the whole chain
                progress.printf(Locale.ROOT, "tpmkms-bench: growing the chain from %,d to %,d records at %d clients%n",
                        workloads.head(), options.verifyRecords(), top);
                growth = workloads.grow(options.verifyRecords(), top);
                progress.printf(Locale.ROOT, "tpmkms-bench: appended %,d records in %.1f s = %,.0f records/s; chain %,d%s%n",
                        growth.records(), growth.seconds(), growth.recordsPerSecond(), growth.chainLength(),
                        growth.errors() == 0 ? "" : "  ERRORS " + growth.errors() + " (first: " + growth.firstError() + ")");
                if (growth.errors() > 0) {
                    throw new IllegalStateException("AppendEvents failed while growing the chain: " + growth.firstError());
                }
                for (int round = 1; round <= 2; round++) {
                    AuditWorkloads.Verification v = workloads.verify(0, 0);
                    verifications.add(v);
                    progress.printf(Locale.ROOT,
                            "tpmkms-bench: VerifyChain round %d: %,d records, %,d checkpoints in %.2f s = %,.0f records/s,"
                                    + " valid %s%s%n",
                            round, v.response().getRecordsChecked(), v.response().getCheckpointsChecked(), v.seconds(),
                            v.recordsPerSecond(), v.response().getValid(),
                            v.response().getValid() ? "" : " (" + v.response().getProblem() + ")");
                }
                loadAfterAppend = MachineInfo.loadAverage();

                // (3) Encrypt with auditing off, then on (the audit service idles during the off rows)
                long headBefore = workloads.head();
                measureEncrypt(options, runner, Map.of("TPMKMS_AUDIT_ENABLED", "false"), "off", encryptOff, null,
                        progress);
                reconciliation = measureEncrypt(options, runner, Map.of("TPMKMS_AUDIT_ENABLED", "true",
                        "TPMKMS_AUDIT_FORWARD_TO", audit.target()), "on", encryptOn, workloads, progress);
                AuditWorkloads.Verification tail = workloads.verify(headBefore, 0);
                reconciliation = reconciliation.withTail(tail.response().getValid(), tail.response().getProblem());
                progress.printf(Locale.ROOT,
                        "tpmkms-bench: audit check: %,d Encrypts acknowledged, %,d successful Encrypt records in the chain"
                                + " (%,d records of %s, %,d new records in all); head reached %.1f s after the last window;"
                                + " chain from %,d valid %s — %s%n",
                        reconciliation.acknowledgedEncrypts(), reconciliation.encryptRecords(),
                        reconciliation.keyRecords(), GrpcWorkloads.AES_KEY, reconciliation.newRecords(),
                        reconciliation.drainSeconds(), headBefore, reconciliation.tailValid(),
                        reconciliation.matches() ? "match" : "MISMATCH");
                ok = true;
            } finally {
                if (!ok) {
                    System.err.println("tpmkms-bench: failed; audit service " + (audit.isAlive() ? "running" : "exited")
                            + "; its log (tail):\n" + audit.logTail(30));
                }
            }
        }
        AuditReport report = new AuditReport(machine, options, append, growth, verifications, encryptOff, encryptOn,
                reconciliation, loadAtStart, loadAfterAppend, MachineInfo.loadAverage());
        progress.println();
        progress.print(report.tables());
        progress.println();
        progress.print(report.verdicts());
        if (!report.failures().isEmpty()) {
            progress.println("tpmkms-bench: failed (" + String.join("; ", report.failures()) + "); the report is not written.");
        } else if (options.report() != null) {
            ReportDocument.write(options.report(), SECTION, report.section());
            progress.println("tpmkms-bench: wrote section '" + SECTION + "' of " + options.report());
        }
        return report;
    }

    /**
     * Starts the key service with {@code env}, creates the benchmark keys, warms Encrypt up at the
     * highest client count and measures every client count. With {@code audit} (auditing on), then
     * waits, while the key service still runs, until the audit service holds its records, and counts
     * them against the Encrypts the key service acknowledged.
     *
     * @return the count check, or {@code null} without {@code audit}
     */
    private static AuditReport.Reconciliation measureEncrypt(Options options, LoadRunner runner, Map<String, String> env,
                                                             String label, List<Measurement> results,
                                                             AuditWorkloads audit, PrintStream progress) throws Exception {
        progress.println("tpmkms-bench: starting " + options.keyJar() + " with auditing " + label);
        try (ServiceProcess key = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.keyJar(),
                options.startTimeout(), env);
             GrpcWorkloads grpc = new GrpcWorkloads(key.target(), options.channels())) {
            progress.println("tpmkms-bench: key service pid " + key.pid() + " SERVING on " + key.target());
            boolean ok = false;
            try {
                long headBefore = audit == null ? 0 : audit.head();
                grpc.prepare();
                LongAdder acknowledged = new LongAdder();
                Workload encrypt = counting(grpc.encrypt(), acknowledged, "grpc-encrypt-audit-" + label);
                int top = options.topEncryptThreads();
                Measurement jit = new LoadRunner(Duration.ZERO, options.warmup()).run(encrypt, top);
                if (jit.errors() > 0) {
                    throw new IllegalStateException("Encrypt failed during warm-up: " + jit.firstError());
                }
                for (int n : options.encryptThreads()) {
                    Measurement m = runner.run(encrypt, n);
                    results.add(m);
                    progress.printf(Locale.ROOT, "tpmkms-bench: Encrypt 1 KiB, auditing %-3s %3d clients %,10.0f ops/s"
                                    + "  p50 %8s µs  p99 %8s µs%s%n",
                            label, n, m.opsPerSecond(), Report.micros(m.p50Micros()), Report.micros(m.p99Micros()), errors(m));
                }
                AuditReport.Reconciliation r = null;
                if (audit != null) {
                    long windowEnd = System.nanoTime();
                    AuditWorkloads.QuietHead h = audit.awaitQuietHead(headBefore, headBefore + acknowledged.sum(),
                            DRAIN_QUIET, DRAIN_TIMEOUT);
                    AuditWorkloads.KeyRecords records = audit.countRecords(GrpcWorkloads.AES_KEY);
                    r = new AuditReport.Reconciliation(acknowledged.sum(), records.encryptOk(), records.all(),
                            h.head() - headBefore, Math.max(0, h.reachedNanos() - windowEnd) / 1e9, true, "");
                }
                ok = results.stream().allMatch(m -> m.errors() == 0);
                return r;
            } finally {
                if (!ok) {
                    System.err.println("tpmkms-bench: failed; key service " + (key.isAlive() ? "running" : "exited")
                            + "; its log (tail):\n" + key.logTail(30));
                }
            }
        }
    }

    /** {@code inner}, counting every operation that returned without an exception (warm-up included). */
    private static Workload counting(Workload inner, LongAdder count, String id) {
        return new Workload() {
            @Override
            public String id() {
                return id;
            }

            @Override
            public String description() {
                return inner.description();
            }

            @Override
            public Operation newOperation(int thread, int threads) throws Exception {
                Operation op = inner.newOperation(thread, threads);
                return new Operation() {
                    @Override
                    public void run() throws Exception {
                        op.run();
                        count.increment();
                    }

                    @Override
                    public void verifyLast() throws Exception {
                        op.verifyLast();
                    }
                };
            }
        };
    }

    private static String errors(Measurement m) {
        return m.errors() == 0 ? "" : "  ERRORS " + m.errors() + " (first: " + m.firstError() + ")";
    }
}

package io.tpmkms.bench;

import io.tpmkms.devtools.ServiceProcess;
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
 *       it again with auditing on, forwarding its journal and outbox to the audit service, and measures the same;
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
     * @param encryptThreads client counts of the Encrypt rows (auditing off and on), blocking threads
     * @param inFlight       calls in flight of the Encrypt sweep (async stubs, auditing off and on); empty: none
     * @param keyEnv         extra environment of both key service starts (e.g. {@code TPMKMS_AUDIT_WRITERS=1})
     * @param forward        whether the auditing-on key service forwards its journal and outbox to the audit service;
     *                       without, the count check cannot run and the report is never written (diagnostic)
     */
    record Options(Path auditJar, Path keyJar, Duration warmup, Duration window, List<Integer> appendThreads,
                   int batch, long verifyRecords, List<Integer> encryptThreads, List<Integer> inFlight,
                   int channels, Path report, Duration startTimeout, Map<String, String> keyEnv, boolean forward,
                   int rounds, Map<String, String> onEnv, Duration jitWarmup) {

        static Options defaults() {
            return new Options(Path.of("audit-service/target/quarkus-app/quarkus-run.jar"),
                    Path.of("key-service/target/quarkus-app/quarkus-run.jar"),
                    Duration.ofSeconds(2), Duration.ofSeconds(8), List.of(8), 250, 1_000_000, List.of(8, 32),
                    List.of(32, 64, 128, 256, 512), 4, Path.of("docs/benchmarks.md"), Duration.ofSeconds(120),
                    Map.of(), true, 2, Map.of(), Duration.ofSeconds(40));
        }

        static Options parse(String... args) {
            Options d = defaults();
            Path auditJar = d.auditJar;
            Path keyJar = d.keyJar;
            Duration warmup = d.warmup;
            Duration window = d.window;
            List<Integer> appendThreads = d.appendThreads;
            int batch = d.batch;
            long verifyRecords = d.verifyRecords;
            List<Integer> encryptThreads = d.encryptThreads;
            List<Integer> inFlight = d.inFlight;
            int channels = d.channels;
            Path report = d.report;
            Map<String, String> keyEnv = new java.util.LinkedHashMap<>();
            boolean forward = true;
            int rounds = d.rounds;
            Map<String, String> onEnv = new java.util.LinkedHashMap<>();
            Duration jitWarmup = d.jitWarmup;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--audit" -> { }
                    case "--audit-jar" -> auditJar = Path.of(value(args, ++i, a));
                    case "--service-jar" -> keyJar = Path.of(value(args, ++i, a));
                    case "--warmup" -> warmup = Benchmark.Options.duration(value(args, ++i, a));
                    case "--measure" -> window = Benchmark.Options.duration(value(args, ++i, a));
                    case "--jit-warmup" -> jitWarmup = Benchmark.Options.duration(value(args, ++i, a));
                    case "--append-threads" -> appendThreads = ints(value(args, ++i, a), a);
                    case "--batch" -> batch = (int) positive(value(args, ++i, a), a);
                    case "--verify-records" -> verifyRecords = positive(value(args, ++i, a), a);
                    case "--threads" -> encryptThreads = ints(value(args, ++i, a), a);
                    case "--in-flight" -> {
                        String v = value(args, ++i, a);
                        inFlight = v.equals("none") ? List.of() : ints(v, a);
                    }
                    case "--channels" -> channels = (int) positive(value(args, ++i, a), a);
                    case "--report" -> report = Path.of(value(args, ++i, a));
                    case "--no-report" -> report = null;
                    case "--key-env", "--on-env" -> {
                        String v = value(args, ++i, a);
                        int eq = v.indexOf('=');
                        if (eq < 1) {
                            throw new IllegalArgumentException(a + " needs NAME=VALUE, got " + v);
                        }
                        (a.equals("--key-env") ? keyEnv : onEnv).put(v.substring(0, eq), v.substring(eq + 1));
                    }
                    case "--rounds" -> rounds = (int) positive(value(args, ++i, a), a);
                    case "--no-forward" -> forward = false;
                    default -> throw new IllegalArgumentException("unknown option for --audit: " + a);
                }
            }
            if (batch > 1000) {
                throw new IllegalArgumentException("--batch is at most 1000 (the audit service's limit per request)");
            }
            return new Options(auditJar, keyJar, warmup, window, appendThreads, batch, verifyRecords, encryptThreads,
                    inFlight, channels, forward ? report : null, d.startTimeout, Map.copyOf(keyEnv), forward, rounds,
                    Map.copyOf(onEnv), jitWarmup);
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
            + " [--warmup 2s] [--measure 8s] [--jit-warmup 40s] [--append-threads 8] [--batch 250] [--verify-records 1000000]"
            + " [--threads 8,32] [--in-flight 32,64,128,256,512 | none] [--channels 4]"
            + " [--rounds 2] [--key-env NAME=VALUE]... [--on-env NAME=VALUE]... [--no-forward]"
            + " [--report docs/benchmarks.md | --no-report]";

    /** Longest wait for the key service's events to reach the audit service after the last window. */
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
        List<Measurement> sweepOff = new ArrayList<>();
        List<Measurement> sweepOn = new ArrayList<>();
        Map<String, List<Double>> roundCosts = new java.util.LinkedHashMap<>();
        Map<String, AuditReport.CpuRow> cpu = new java.util.LinkedHashMap<>();
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
                Map<String, String> offEnv = env(options, Map.of("TPMKMS_AUDIT_ENABLED", "false"), Map.of());
                Map<String, String> onEnv = env(options, options.forward()
                        ? Map.of("TPMKMS_AUDIT_ENABLED", "true", "TPMKMS_AUDIT_FORWARD_TO", audit.target())
                        : Map.of("TPMKMS_AUDIT_ENABLED", "true"), options.onEnv());
                reconciliation = measureEncrypt(options, offEnv, onEnv, encryptOff, encryptOn, sweepOff, sweepOn,
                        roundCosts, cpu, audit, options.forward() ? workloads : null, progress);
                if (reconciliation == null) {
                    progress.println("tpmkms-bench: --no-forward: events were not forwarded, no count check; "
                            + "the report is not written");
                    ok = true;
                    return new AuditReport(machine, options, append, growth, verifications, encryptOff, encryptOn,
                            sweepOff, sweepOn, roundCosts, cpu, null, loadAtStart, loadAfterAppend, MachineInfo.loadAverage())
                            .printed(progress);
                }
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
                sweepOff, sweepOn, roundCosts, cpu, reconciliation, loadAtStart, loadAfterAppend, MachineInfo.loadAverage())
                .printed(progress);
        if (!report.failures().isEmpty()) {
            progress.println("tpmkms-bench: failed (" + String.join("; ", report.failures()) + "); the report is not written.");
        } else if (options.report() != null) {
            ReportDocument.write(options.report(), SECTION, report.section());
            progress.println("tpmkms-bench: wrote section '" + SECTION + "' of " + options.report());
        }
        return report;
    }

    /**
     * Starts two key services side by side, one with auditing off ({@code offEnv}) and one with auditing
     * on ({@code onEnv}), each with its own fresh data directory, creates the benchmark keys in both,
     * and measures each row (blocking client threads, then calls in flight) in {@link Options#rounds()}
     * alternating windows per service — off, on, off, on — so that both see the same background load
     * of this shared machine (only one service is driven at a time; the idle one costs nothing). A
     * row's figures: operations of all its windows over their total time; p50 the mean of the windows'
     * p50, p99 the highest window p99; {@code roundCosts} keeps each round's 1 - on/off. With
     * {@code audit}, then waits, while the services still run, until the audit service holds the
     * auditing-on service's records, and counts them against the Encrypts it acknowledged.
     *
     * @return the count check, or {@code null} without {@code audit}
     */
    private static AuditReport.Reconciliation measureEncrypt(Options options, Map<String, String> offEnv,
                                                             Map<String, String> onEnv, List<Measurement> blockingOff,
                                                             List<Measurement> blockingOn, List<Measurement> sweepOff,
                                                             List<Measurement> sweepOn,
                                                             Map<String, List<Double>> roundCosts,
                                                             Map<String, AuditReport.CpuRow> cpu,
                                                             ServiceProcess auditProcess,
                                                             AuditWorkloads audit, PrintStream progress) throws Exception {
        progress.println("tpmkms-bench: starting " + options.keyJar() + " twice, auditing off and on");
        try (ServiceProcess off = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.keyJar(),
                options.startTimeout(), offEnv);
             ServiceProcess on = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.keyJar(),
                     options.startTimeout(), onEnv);
             GrpcWorkloads offGrpc = new GrpcWorkloads(off.target(), options.channels());
             GrpcWorkloads onGrpc = new GrpcWorkloads(on.target(), options.channels());
             InFlightRunner offAsync = new InFlightRunner(off.target(), options.channels());
             InFlightRunner onAsync = new InFlightRunner(on.target(), options.channels())) {
            progress.println("tpmkms-bench: key service pid " + off.pid() + " (auditing off) SERVING on " + off.target()
                    + ", pid " + on.pid() + " (auditing on) on " + on.target());
            boolean ok = false;
            // the JVMs without their child processes (the services are this JVM's children), each
            // PostgreSQL with the backends it forked
            CpuMeter meter = new CpuMeter().process("client", ProcessHandle.current().pid())
                    .process("off key service", off.pid()).postgres("off key PostgreSQL", off.dataDir())
                    .process("on key service", on.pid()).postgres("on key PostgreSQL", on.dataDir())
                    .process("audit service", auditProcess.pid())
                    .postgres("audit PostgreSQL", auditProcess.dataDir());
            try {
                long headBefore = audit == null ? 0 : audit.head();
                offGrpc.prepare();
                onGrpc.prepare();
                LongAdder acknowledged = new LongAdder();
                LongAdder ignored = new LongAdder();
                Workload offEncrypt = counting(offGrpc.encrypt(), ignored, "grpc-encrypt-audit-off");
                Workload onEncrypt = counting(onGrpc.encrypt(), acknowledged, "grpc-encrypt-audit-on");
                int top = options.topEncryptThreads();
                // JIT warm-up of both services before any row (3 x the per-row warm-up, blocking, then async):
                // the auditing-on service has more code to compile, and compiling must not fall into its rows
                // (measured: the auditing-on service's C2 compiler was still busy 30-60 s into the run with a
                // 6-s warm-up, and its CPU fell into the rows; with 20 s, compiling still cost it 2.8-3.6 µs per
                // Encrypt in the rows, by the per-thread table; with 40 s, 0.5-1.1 µs)
                LoadRunner jitRunner = new LoadRunner(Duration.ZERO, options.jitWarmup());
                int topInFlight = options.inFlight().stream().mapToInt(Integer::intValue).max().orElse(0);
                for (Workload w : List.of(offEncrypt, onEncrypt)) {
                    Measurement jit = jitRunner.run(w, top);
                    if (jit.errors() > 0) {
                        throw new IllegalStateException("Encrypt failed during warm-up: " + jit.firstError());
                    }
                }
                for (InFlightRunner r : List.of(offAsync, onAsync)) {
                    if (topInFlight > 0) {
                        Measurement jit = r.run(topInFlight, Duration.ZERO, options.jitWarmup(),
                                r == onAsync ? acknowledged : ignored);
                        if (jit.errors() > 0) {
                            throw new IllegalStateException("Encrypt failed during warm-up: " + jit.firstError());
                        }
                    }
                }
                LoadRunner runner = new LoadRunner(options.warmup(), options.window());
                for (int n : options.encryptThreads()) {
                    List<Measurement> a = new ArrayList<>();
                    List<Measurement> b = new ArrayList<>();
                    CpuTally tally = new CpuTally();
                    for (int round = 0; round < options.rounds(); round++) {
                        tally.before(meter, ignored);
                        a.add(runner.run(offEncrypt, n));
                        tally.between(meter, ignored, acknowledged);
                        b.add(runner.run(onEncrypt, n));
                        tally.after(meter, acknowledged);
                    }
                    cpu.put("clients-" + n, tally.row(n + " clients"));
                    row(progress, "", "clients", n, a, b, blockingOff, blockingOn, roundCosts, "clients-" + n);
                }
                for (int n : options.inFlight()) {
                    List<Measurement> a = new ArrayList<>();
                    List<Measurement> b = new ArrayList<>();
                    CpuTally tally = new CpuTally();
                    for (int round = 0; round < options.rounds(); round++) {
                        tally.before(meter, ignored);
                        a.add(offAsync.run(n, options.warmup(), options.window(), ignored));
                        tally.between(meter, ignored, acknowledged);
                        b.add(onAsync.run(n, options.warmup(), options.window(), acknowledged));
                        tally.after(meter, acknowledged);
                    }
                    cpu.put("in-flight-" + n, tally.row(n + " in flight"));
                    row(progress, " async", "in flight", n, a, b, sweepOff, sweepOn, roundCosts, "in-flight-" + n);
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
                ok = java.util.stream.Stream.of(blockingOff, blockingOn, sweepOff, sweepOn)
                        .flatMap(List::stream).allMatch(m -> m.errors() == 0) && (r == null || r.matches());
                return r;
            } finally {
                if (!ok) {
                    System.err.println("tpmkms-bench: failed; key service (auditing off) "
                            + (off.isAlive() ? "running" : "exited") + "; its log (tail):\n" + off.logTail(30));
                    System.err.println("tpmkms-bench: key service (auditing on) "
                            + (on.isAlive() ? "running" : "exited") + "; its log (tail):\n" + on.logTail(30));
                }
            }
        }
    }

    /**
     * What a key service thread does, by its name: the gRPC event loops (which also run the cached-key
     * Encrypt itself), the audit journal's writer and completion threads, the forwarder with its gRPC
     * channel, the JIT compiler, the garbage collector, the rest.
     */
    static String threadCategory(String name) {
        if (name.startsWith("vert.x-eventloo")) return "event loops";
        if (name.equals("audit-journal-w")) return "journal writer";
        if (name.equals("audit-journal-d")) return "journal completions";
        if (name.equals("audit-forwarder") || name.startsWith("grpc-")) return "forwarder";
        if (name.contains("CompilerThre")) return "JIT compiler";
        if (name.startsWith("GC ") || name.startsWith("G1 ")) return "GC";
        return "other";
    }

    /** CPU seconds and calls of one row's rounds (off window, then on window), summed over the rounds. */
    private static final class CpuTally {
        private final Map<String, Double> offSeconds = new java.util.LinkedHashMap<>();
        private final Map<String, Double> onSeconds = new java.util.LinkedHashMap<>();
        private final Map<String, Double> offThreads = new java.util.LinkedHashMap<>();
        private final Map<String, Double> onThreads = new java.util.LinkedHashMap<>();
        private CpuMeter.Threads offThreads0;
        private CpuMeter.Threads onThreads1;
        private long offCalls;
        private long onCalls;
        private Map<String, Double> t0;
        private Map<String, Double> t1;
        private long off0;
        private long on1;

        void before(CpuMeter meter, LongAdder offCounter) {
            offThreads0 = meter.threads("off key service", AuditBenchmark::threadCategory);
            t0 = meter.seconds();
            off0 = offCounter.sum();
        }

        void between(CpuMeter meter, LongAdder offCounter, LongAdder onCounter) {
            t1 = meter.seconds();
            meter.threads("off key service", AuditBenchmark::threadCategory).since(offThreads0)
                    .forEach((k, v) -> offThreads.merge(k, v, Double::sum));
            onThreads1 = meter.threads("on key service", AuditBenchmark::threadCategory);
            offCalls += offCounter.sum() - off0;
            on1 = onCounter.sum();
        }

        void after(CpuMeter meter, LongAdder onCounter) {
            Map<String, Double> t2 = meter.seconds();
            meter.threads("on key service", AuditBenchmark::threadCategory).since(onThreads1)
                    .forEach((k, v) -> onThreads.merge(k, v, Double::sum));
            onCalls += onCounter.sum() - on1;
            Map<String, Double> offWindow = CpuMeter.minus(t1, t0);
            Map<String, Double> onWindow = CpuMeter.minus(t2, t1);
            Map<String, Double> bothWindows = CpuMeter.minus(t2, t0);
            offSeconds.merge("client", offWindow.get("client"), Double::sum);
            offSeconds.merge("key service", offWindow.get("off key service"), Double::sum);
            offSeconds.merge("key PostgreSQL", offWindow.getOrDefault("off key PostgreSQL", 0.0), Double::sum);
            onSeconds.merge("client", onWindow.get("client"), Double::sum);
            onSeconds.merge("key service", onWindow.get("on key service"), Double::sum);
            onSeconds.merge("key PostgreSQL", onWindow.getOrDefault("on key PostgreSQL", 0.0), Double::sum);
            onSeconds.merge("audit service", bothWindows.get("audit service"), Double::sum);
            onSeconds.merge("audit PostgreSQL", bothWindows.getOrDefault("audit PostgreSQL", 0.0), Double::sum);
        }

        AuditReport.CpuRow row(String label) {
            Map<String, Double> off = new java.util.LinkedHashMap<>();
            Map<String, Double> on = new java.util.LinkedHashMap<>();
            offSeconds.forEach((k, v) -> off.put(k, offCalls == 0 ? Double.NaN : v * 1e6 / offCalls));
            onSeconds.forEach((k, v) -> on.put(k, onCalls == 0 ? Double.NaN : v * 1e6 / onCalls));
            Map<String, Double> offByThread = new java.util.LinkedHashMap<>();
            Map<String, Double> onByThread = new java.util.LinkedHashMap<>();
            offThreads.forEach((k, v) -> offByThread.put(k, offCalls == 0 ? Double.NaN : v * 1e6 / offCalls));
            onThreads.forEach((k, v) -> onByThread.put(k, onCalls == 0 ? Double.NaN : v * 1e6 / onCalls));
            return new AuditReport.CpuRow(label, off, on, offByThread, onByThread);
        }
    }

    /** Combines the rounds of one row, prints them, adds the row to {@code offRows} / {@code onRows}. */
    private static void row(PrintStream progress, String kind, String unit, int n, List<Measurement> off,
                            List<Measurement> on, List<Measurement> offRows, List<Measurement> onRows,
                            Map<String, List<Double>> roundCosts, String key) {
        List<Double> costs = new ArrayList<>();
        for (int i = 0; i < off.size(); i++) {
            double o = off.get(i).opsPerSecond();
            costs.add(o == 0 ? Double.NaN : 1 - on.get(i).opsPerSecond() / o);
            progress.printf(Locale.ROOT, "tpmkms-bench: Encrypt 1 KiB%s, round %d, %3d %s: off %,10.0f ops/s (p50 %s µs,"
                            + " p99 %s µs), on %,10.0f ops/s (p50 %s µs, p99 %s µs), cost %.0f %%%s%s%n",
                    kind, i + 1, n, unit, off.get(i).opsPerSecond(), Report.micros(off.get(i).p50Micros()),
                    Report.micros(off.get(i).p99Micros()), on.get(i).opsPerSecond(), Report.micros(on.get(i).p50Micros()),
                    Report.micros(on.get(i).p99Micros()), costs.get(i) * 100, errors(off.get(i)), errors(on.get(i)));
        }
        roundCosts.put(key, List.copyOf(costs));
        offRows.add(combine(off));
        onRows.add(combine(on));
    }

    /** Rounds of one row as one measurement: all operations over all windows, mean p50, highest p99. */
    static Measurement combine(List<Measurement> rounds) {
        Measurement first = rounds.get(0);
        long ops = 0;
        double seconds = 0;
        double p50 = 0;
        double p99 = 0;
        long errors = 0;
        String firstError = null;
        for (Measurement m : rounds) {
            ops += m.operations();
            seconds += m.seconds();
            p50 += m.p50Micros() / rounds.size();
            p99 = Math.max(p99, m.p99Micros());
            errors += m.errors();
            if (firstError == null) {
                firstError = m.firstError();
            }
        }
        return new Measurement(first.workload(), first.description(), first.threads(), ops, seconds, p50, p99, errors,
                firstError);
    }

    /** A key service's environment: {@code base}, then {@link Options#keyEnv()}, then {@code more} (later wins). */
    private static Map<String, String> env(Options options, Map<String, String> base, Map<String, String> more) {
        Map<String, String> env = new java.util.LinkedHashMap<>(base);
        env.putAll(options.keyEnv());
        env.putAll(more);
        return env;
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

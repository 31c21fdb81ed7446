package io.tpmkms.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The figures of one audit run and how they read against the three targets: append at least
 * {@value #APPEND_TARGET} records/s (durable), VerifyChain over {@value #VERIFY_TARGET_RECORDS} records
 * in under {@value #VERIFY_TARGET_SECONDS} s, and auditing costing at most {@value #COST_TARGET} of
 * Encrypt throughput.
 */
record AuditReport(MachineInfo machine, AuditBenchmark.Options options, List<Measurement> append,
                   AuditWorkloads.Growth growth, List<AuditWorkloads.Verification> verifications,
                   List<Measurement> encryptOff, List<Measurement> encryptOn, List<Measurement> sweepOff,
                   List<Measurement> sweepOn, Map<String, List<Double>> roundCosts, Map<String, CpuRow> cpu,
                   Reconciliation reconciliation, String loadAtStart, String loadAfterAppend, String loadAtEnd) {

    /**
     * CPU per Encrypt of one row, by process group, in µs: {@code off} has the client, the key service and
     * its PostgreSQL; {@code on} also the audit service and its PostgreSQL (whose CPU during both windows of
     * a round counts against the on side: it catches up on the on window's records during the off window).
     */
    record CpuRow(String label, Map<String, Double> off, Map<String, Double> on, Map<String, Double> offThreads,
                  Map<String, Double> onThreads) {
        double offTotal() { return off.values().stream().mapToDouble(Double::doubleValue).sum(); }

        double onTotal() { return on.values().stream().mapToDouble(Double::doubleValue).sum(); }

        /** 1 - off/on: what auditing costs the throughput of a box whose CPU is the limit. */
        double cost() { return 1 - offTotal() / onTotal(); }

        /** CPU per call on the key service's side alone: the client, the key service, its PostgreSQL. */
        double onKeySide() { return on.get("client") + on.get("key service") + on.get("key PostgreSQL"); }

        /**
         * 1 - off/on without the audit service and its PostgreSQL: what auditing costs the key service's
         * hosts when the audit service runs on its own (as deployed: its own pods and database).
         */
        double keySideCost() { return 1 - offTotal() / onKeySide(); }

        /**
         * 1 - off/on of the key service process and its PostgreSQL alone: what auditing costs a key service
         * pod whose CPU is its limit, with its clients and the audit service elsewhere.
         */
        double keyServiceCost() {
            return 1 - (off.get("key service") + off.get("key PostgreSQL"))
                    / (on.get("key service") + on.get("key PostgreSQL"));
        }
    }

    /** Thread categories of the key service, in the order of the per-thread table. */
    static final List<String> THREAD_COLUMNS = List.of("event loops", "journal writer", "journal completions",
            "forwarder", "JIT compiler", "GC", "other");

    static final double APPEND_TARGET = 20_000;
    static final long VERIFY_TARGET_RECORDS = 1_000_000;
    static final double VERIFY_TARGET_SECONDS = 10;
    static final double COST_TARGET = 0.25;

    /**
     * The correctness check of the auditing-on rows.
     *
     * @param acknowledgedEncrypts Encrypts the key service answered OK (warm-up and windows)
     * @param encryptRecords       successful Encrypt records of the benchmark key in the audit chain
     * @param keyRecords           all records of the benchmark key (CreateKey, Encrypt, Decrypt checks)
     * @param newRecords           records the chain grew by while the key service ran
     * @param drainSeconds         from the end of the last window until the head reached its final value
     * @param tailValid            VerifyChain over the new records
     */
    record Reconciliation(long acknowledgedEncrypts, long encryptRecords, long keyRecords, long newRecords,
                          double drainSeconds, boolean tailValid, String tailProblem) {

        boolean matches() {
            return acknowledgedEncrypts == encryptRecords;
        }

        Reconciliation withTail(boolean valid, String problem) {
            return new Reconciliation(acknowledgedEncrypts, encryptRecords, keyRecords, newRecords, drainSeconds,
                    valid, problem);
        }
    }

    /** Why the run does not count: failed operations, an invalid chain, lost or extra records. */
    List<String> failures() {
        List<String> out = new ArrayList<>();
        long errors = 0;
        for (List<Measurement> rows : List.of(append, encryptOff, encryptOn, sweepOff, sweepOn)) {
            errors += rows.stream().mapToLong(Measurement::errors).sum();
        }
        errors += growth.errors();
        if (errors > 0) {
            out.add(errors + " operations failed");
        }
        // each VerifyChain is recorded in the chain after it has read (ADR 0023): round i sees i more records
        for (int i = 0; i < verifications.size(); i++) {
            AuditWorkloads.Verification v = verifications.get(i);
            if (!v.response().getValid()) {
                out.add("VerifyChain found the chain invalid: " + v.response().getProblem());
            } else if (v.response().getRecordsChecked() != growth.chainLength() + i) {
                out.add("VerifyChain checked " + v.response().getRecordsChecked() + " records, the chain has "
                        + growth.chainLength());
            }
        }
        if (reconciliation == null) {
            out.add("no audit count check");
        } else {
            if (!reconciliation.matches()) {
                out.add("the audit service holds " + reconciliation.encryptRecords() + " Encrypt records for "
                        + reconciliation.acknowledgedEncrypts() + " acknowledged Encrypts");
            }
            if (!reconciliation.tailValid()) {
                out.add("VerifyChain over the key service's records: " + reconciliation.tailProblem());
            }
        }
        return out;
    }

    Optional<Measurement> bestAppend() {
        return append.stream().max(Comparator.comparingDouble(Measurement::opsPerSecond));
    }

    double recordsPerSecond(Measurement m) {
        return m.opsPerSecond() * options.batch();
    }

    /** The slower VerifyChain round, the one the target is judged on. */
    Optional<AuditWorkloads.Verification> slowestVerify() {
        return verifications.stream().max(Comparator.comparingDouble(AuditWorkloads.Verification::seconds));
    }

    /** Seconds for {@value #VERIFY_TARGET_RECORDS} records at the slower round's rate. */
    double verifySecondsFor1M() {
        return slowestVerify().map(v -> VERIFY_TARGET_RECORDS / v.recordsPerSecond()).orElse(Double.NaN);
    }

    Optional<Measurement> on(int threads) {
        return encryptOn.stream().filter(m -> m.threads() == threads).findFirst();
    }

    Optional<Measurement> off(int threads) {
        return encryptOff.stream().filter(m -> m.threads() == threads).findFirst();
    }

    /** 1 - on/off at that client count. */
    Optional<Double> cost(int threads) {
        Optional<Measurement> a = on(threads);
        Optional<Measurement> b = off(threads);
        if (a.isEmpty() || b.isEmpty() || b.get().opsPerSecond() == 0) {
            return Optional.empty();
        }
        return Optional.of(1 - a.get().opsPerSecond() / b.get().opsPerSecond());
    }

    /** Prints the tables and the verdicts; returns this. */
    AuditReport printed(java.io.PrintStream out) {
        out.println();
        out.print(tables());
        out.println();
        out.print(verdicts());
        return this;
    }

    static Optional<Measurement> at(List<Measurement> rows, int n) {
        return rows.stream().filter(m -> m.threads() == n).findFirst();
    }

    /** 1 - on/off at that number of calls in flight (async sweep). */
    Optional<Double> sweepCost(int n) {
        Optional<Measurement> a = at(sweepOn, n);
        Optional<Measurement> b = at(sweepOff, n);
        if (a.isEmpty() || b.isEmpty() || b.get().opsPerSecond() == 0) {
            return Optional.empty();
        }
        return Optional.of(1 - a.get().opsPerSecond() / b.get().opsPerSecond());
    }

    static Optional<Measurement> best(List<Measurement> rows) {
        return rows.stream().max(Comparator.comparingDouble(Measurement::opsPerSecond));
    }

    /** 1 - (best on row) / (best off row) of the sweep: the cost at saturation. */
    Optional<Double> saturatedCost() {
        Optional<Measurement> a = best(sweepOn);
        Optional<Measurement> b = best(sweepOff);
        if (a.isEmpty() || b.isEmpty() || b.get().opsPerSecond() == 0) {
            return Optional.empty();
        }
        return Optional.of(1 - a.get().opsPerSecond() / b.get().opsPerSecond());
    }

    String tables() {
        StringBuilder b = new StringBuilder();
        b.append("**Append** (AppendEvents over gRPC, ").append(options.batch())
                .append(" events per request; a request is answered after its transaction committed):\n\n");
        b.append("| Phase | Clients | Requests/s | Records/s | p50 per request (ms) | p99 per request (ms) | Errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|\n");
        for (Measurement m : append) {
            b.append(String.format(Locale.ROOT, "| timed window (%s) | %d | %,.0f | **%,.0f** | %s | %s | %d |%n",
                    seconds(options.window()), m.threads(), m.opsPerSecond(), recordsPerSecond(m),
                    millis(m.p50Micros()), millis(m.p99Micros()), m.errors()));
        }
        b.append(String.format(Locale.ROOT, "| growing the chain to %,d: %,d records in %.1f s | %d | %,.0f | %,.0f | | | %d |%n",
                growth.chainLength(), growth.records(), growth.seconds(), growth.threads(),
                growth.recordsPerSecond() / options.batch(), growth.recordsPerSecond(), growth.errors()));
        b.append("\n**Verify** (VerifyChain over the whole chain, timed by the client, twice in a row):\n\n");
        b.append("| Round | Records | Checkpoints | Seconds | Records/s | Valid |\n");
        b.append("|---:|---:|---:|---:|---:|---|\n");
        int round = 1;
        for (AuditWorkloads.Verification v : verifications) {
            b.append(String.format(Locale.ROOT, "| %d | %,d | %,d | **%.2f** | %,.0f | %s |%n", round++,
                    v.response().getRecordsChecked(), v.response().getCheckpointsChecked(), v.seconds(),
                    v.recordsPerSecond(), v.response().getValid() ? "yes" : "NO: " + v.response().getProblem()));
        }
        b.append("\n**Encrypt** (gRPC Encrypt AES-256-GCM, 1 KiB + 16 B AAD; auditing off and on, alternating, the"
                + " journal forwarded to the audit service above):\n\n");
        b.append("| Clients | Off: ops/s | Off: p50 (µs) | Off: p99 (µs) | On: ops/s | On: p50 (µs) | On: p99 (µs) "
                + "| Cost (1 - on/off; rounds' range) | Errors |\n");
        b.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int n : options.encryptThreads()) {
            Optional<Measurement> a = off(n);
            Optional<Measurement> o = on(n);
            b.append(String.format(Locale.ROOT, "| %d | %s | %s | %s | %s | %s | %s | **%s** | %d |%n", n,
                    a.map(m -> String.format(Locale.ROOT, "%,.0f", m.opsPerSecond())).orElse("—"),
                    a.map(m -> Report.micros(m.p50Micros())).orElse("—"),
                    a.map(m -> Report.micros(m.p99Micros())).orElse("—"),
                    o.map(m -> String.format(Locale.ROOT, "%,.0f", m.opsPerSecond())).orElse("—"),
                    o.map(m -> Report.micros(m.p50Micros())).orElse("—"),
                    o.map(m -> Report.micros(m.p99Micros())).orElse("—"),
                    cost(n).map(c -> costCell(c, "clients-" + n)).orElse("—"),
                    a.map(Measurement::errors).orElse(0L) + o.map(Measurement::errors).orElse(0L)));
        }
        if (!sweepOff.isEmpty() || !sweepOn.isEmpty()) {
            b.append("\n**Encrypt, calls in flight** (the same Encrypt from asynchronous stubs: N calls always in flight,"
                    + " each slot starting its next call when the previous one answered, over "
                    + options.channels() + " channels; auditing off and on in the same run):\n\n");
            b.append("| In flight | Off: ops/s | Off: p50 (µs) | Off: p99 (µs) | On: ops/s | On: p50 (µs) | On: p99 (µs) "
                    + "| Cost (1 - on/off; rounds' range) | Errors |\n");
            b.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for (int n : options.inFlight()) {
                Optional<Measurement> a = at(sweepOff, n);
                Optional<Measurement> o = at(sweepOn, n);
                b.append(String.format(Locale.ROOT, "| %d | %s | %s | %s | %s | %s | %s | **%s** | %d |%n", n,
                        a.map(m -> String.format(Locale.ROOT, "%,.0f", m.opsPerSecond())).orElse("—"),
                        a.map(m -> Report.micros(m.p50Micros())).orElse("—"),
                        a.map(m -> Report.micros(m.p99Micros())).orElse("—"),
                        o.map(m -> String.format(Locale.ROOT, "%,.0f", m.opsPerSecond())).orElse("—"),
                        o.map(m -> Report.micros(m.p50Micros())).orElse("—"),
                        o.map(m -> Report.micros(m.p99Micros())).orElse("—"),
                        sweepCost(n).map(c -> costCell(c, "in-flight-" + n)).orElse("—"),
                        a.map(Measurement::errors).orElse(0L) + o.map(Measurement::errors).orElse(0L)));
            }
            Optional<Measurement> bo = best(sweepOff);
            Optional<Measurement> bn = best(sweepOn);
            if (bo.isPresent() && bn.isPresent()) {
                b.append(String.format(Locale.ROOT,
                        "%nSaturated throughput (best row of the sweep): off %,.0f ops/s at %d in flight, on %,.0f ops/s"
                                + " at %d in flight — cost at saturation **%.0f %%**.%n",
                        bo.get().opsPerSecond(), bo.get().threads(), bn.get().opsPerSecond(), bn.get().threads(),
                        saturatedCost().orElse(Double.NaN) * 100));
            }
        }
        if (!cpu.isEmpty()) {
            b.append("\n**CPU per Encrypt** (µs of CPU per call — user + system time of every thread and child process,"
                    + " from /proc, over each row's windows and warm-ups; the audit service and its PostgreSQL are counted"
                    + " during both windows of a round against the on side). On a box whose CPU is the limit,"
                    + " throughput = cores / CPU per call, so 1 - off/on is what auditing costs saturated throughput,"
                    + " and it moves far less with other load than ops/s do:\n\n");
            b.append("| Row | Off: client | Off: key service | Off: its PostgreSQL | **Off: total** | On: client "
                    + "| On: key service | On: its PostgreSQL | On: audit service | On: audit PostgreSQL | **On: total** "
                    + "| CPU cost, all on one box (1 - off/on) | CPU cost, key service's side (without the audit "
                    + "service and its PostgreSQL) |\n");
            b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for (CpuRow r : cpu.values()) {
                b.append(String.format(Locale.ROOT,
                        "| %s | %.1f | %.1f | %.1f | **%.1f** | %.1f | %.1f | %.1f | %.1f | %.1f | **%.1f** | **%.0f %%** "
                                + "| **%.0f %%** |%n",
                        r.label(), r.off().get("client"), r.off().get("key service"), r.off().get("key PostgreSQL"),
                        r.offTotal(), r.on().get("client"), r.on().get("key service"), r.on().get("key PostgreSQL"),
                        r.on().get("audit service"), r.on().get("audit PostgreSQL"), r.onTotal(), r.cost() * 100,
                        r.keySideCost() * 100));
            }
            b.append("\n**The key service's CPU per Encrypt by thread** (µs per call, from /proc/<pid>/task, same windows;"
                    + " event loops: gRPC I/O and the cached-key Encrypt itself; journal writer: write + fdatasync of each"
                    + " group commit; journal completions: answering the calls whose events are durable; forwarder: reading"
                    + " the journal and AppendEvents with its gRPC channel). Last column: what auditing costs a key service"
                    + " whose own CPU is the limit (clients and the audit service elsewhere):\n\n");
            b.append("| Row | Side");
            for (String c : THREAD_COLUMNS) b.append(" | ").append(c);
            b.append(" | total | key service alone: cost (1 - off/on, with its PostgreSQL) |\n|---|---");
            for (int i = 0; i <= THREAD_COLUMNS.size(); i++) b.append("|---:");
            b.append("|---:|\n");
            for (CpuRow r : cpu.values()) {
                for (boolean on : new boolean[] {false, true}) {
                    Map<String, Double> t = on ? r.onThreads() : r.offThreads();
                    b.append("| ").append(r.label()).append(" | ").append(on ? "on" : "off");
                    double total = 0;
                    for (String c : THREAD_COLUMNS) {
                        double v = t.getOrDefault(c, 0.0);
                        total += v;
                        b.append(String.format(Locale.ROOT, " | %.1f", v));
                    }
                    b.append(String.format(Locale.ROOT, " | **%.1f** | %s |%n", total,
                            on ? String.format(Locale.ROOT, "**%.0f %%**", r.keyServiceCost() * 100) : ""));
                }
            }
        }
        if (reconciliation != null) {
            b.append(String.format(Locale.ROOT,
                    "%nAudit check (auditing on): the key service acknowledged %,d Encrypts (warm-up and windows); the "
                            + "audit service holds %,d successful Encrypt records of `%s` — **%s**. The chain grew by %,d "
                            + "records in all (also CreateKey, GetPublicKey and the Decrypt checks); its head reached its "
                            + "final value %.1f s after the last window ended; VerifyChain over those records: %s.%n",
                    reconciliation.acknowledgedEncrypts(), reconciliation.encryptRecords(), GrpcWorkloads.AES_KEY,
                    reconciliation.matches() ? "equal, nothing lost or doubled" : "MISMATCH",
                    reconciliation.newRecords(), reconciliation.drainSeconds(),
                    reconciliation.tailValid() ? "valid" : "INVALID (" + reconciliation.tailProblem() + ")"));
        }
        return b.toString();
    }

    String verdicts() {
        StringBuilder b = new StringBuilder();
        Optional<Measurement> best = bestAppend();
        if (best.isPresent()) {
            double r = recordsPerSecond(best.get());
            b.append(String.format(Locale.ROOT,
                    "- Target: append at least %,.0f records/s, durable. Measured: **%,.0f records/s** at %d clients "
                            + "(best timed window; %,.0f records/s sustained while growing the chain) — **%s**.%n",
                    APPEND_TARGET, r, best.get().threads(), growth.recordsPerSecond(),
                    r >= APPEND_TARGET ? "target met" : "target missed"));
        }
        Optional<AuditWorkloads.Verification> slow = slowestVerify();
        if (slow.isPresent()) {
            long n = slow.get().response().getRecordsChecked();
            double s = verifySecondsFor1M();
            if (n >= VERIFY_TARGET_RECORDS) {
                b.append(String.format(Locale.ROOT,
                        "- Target: verify %,d records in under %.0f s. Measured: **%,d records in %.2f s** (%,.0f "
                                + "records/s, the slower of %d rounds) — **%s**.%n",
                        VERIFY_TARGET_RECORDS, VERIFY_TARGET_SECONDS, n, slow.get().seconds(),
                        slow.get().recordsPerSecond(), verifications.size(),
                        slow.get().seconds() * VERIFY_TARGET_RECORDS / n < VERIFY_TARGET_SECONDS ? "target met" : "target missed"));
            } else {
                b.append(String.format(Locale.ROOT,
                        "- Target: verify %,d records in under %.0f s. Measured only %,d records in %.2f s (%,.0f "
                                + "records/s); extrapolated to %,d: **%.1f s** — **%s (extrapolated, not measured)**.%n",
                        VERIFY_TARGET_RECORDS, VERIFY_TARGET_SECONDS, n, slow.get().seconds(),
                        slow.get().recordsPerSecond(), VERIFY_TARGET_RECORDS, s,
                        s < VERIFY_TARGET_SECONDS ? "target met" : "target missed"));
            }
        }
        List<String> costs = new ArrayList<>();
        boolean allMet = true;
        boolean any = false;
        for (int n : options.encryptThreads()) {
            Optional<Double> c = cost(n);
            if (c.isPresent()) {
                any = true;
                allMet &= c.get() <= COST_TARGET;
                costs.add(String.format(Locale.ROOT, "%.0f %% at %d clients (%,.0f → %,.0f ops/s)", c.get() * 100, n,
                        off(n).get().opsPerSecond(), on(n).get().opsPerSecond()));
            }
        }
        if (any) {
            b.append(String.format(Locale.ROOT,
                    "- Target: auditing costs at most %.0f %% of Encrypt throughput. Blocking clients (latency-bound: "
                            + "each client waits for its durable commit): **%s** — **%s**.%n",
                    COST_TARGET * 100, String.join(", ", costs), allMet ? "target met" : "target missed"));
        }
        Optional<Double> sat = saturatedCost();
        if (sat.isPresent()) {
            List<String> met = new ArrayList<>();
            List<String> rows = new ArrayList<>();
            for (int n : options.inFlight()) {
                Optional<Double> c = sweepCost(n);
                if (c.isPresent()) {
                    rows.add(String.format(Locale.ROOT, "%.0f %% at %d", c.get() * 100, n));
                    if (c.get() <= COST_TARGET) {
                        met.add(Integer.toString(n));
                    }
                }
            }
            b.append(String.format(Locale.ROOT,
                    "- Same target, calls in flight: **%s**; at saturation (best on / best off) **%.0f %%** — **%s**%s.%n",
                    String.join(", ", rows), sat.get() * 100,
                    sat.get() <= COST_TARGET ? "target met at saturation" : "target missed at saturation",
                    met.isEmpty() ? "; no in-flight count meets it"
                            : "; met at " + String.join(", ", met) + " in flight"));
        }
        if (!cpu.isEmpty()) {
            List<String> rows = new ArrayList<>();
            List<String> keyRows = new ArrayList<>();
            List<String> aloneRows = new ArrayList<>();
            boolean cpuMet = true;
            boolean keyMet = true;
            boolean aloneMet = true;
            for (CpuRow r : cpu.values()) {
                aloneRows.add(String.format(Locale.ROOT, "%.0f %% at %s (%.1f → %.1f µs)", r.keyServiceCost() * 100,
                        r.label(), r.off().get("key service") + r.off().get("key PostgreSQL"),
                        r.on().get("key service") + r.on().get("key PostgreSQL")));
                aloneMet &= r.keyServiceCost() <= COST_TARGET;
                rows.add(String.format(Locale.ROOT, "%.0f %% at %s (%.1f → %.1f µs)", r.cost() * 100, r.label(),
                        r.offTotal(), r.onTotal()));
                keyRows.add(String.format(Locale.ROOT, "%.0f %% at %s (%.1f → %.1f µs)", r.keySideCost() * 100,
                        r.label(), r.offTotal(), r.onKeySide()));
                cpuMet &= r.cost() <= COST_TARGET;
                keyMet &= r.keySideCost() <= COST_TARGET;
            }
            b.append(String.format(Locale.ROOT,
                    "- Same target, from CPU per call, everything (client, key service, audit service, both "
                            + "PostgreSQL servers) on these two cores: **%s** — **%s**.%n", String.join(", ", rows),
                    cpuMet ? "target met on every row" : "target missed"));
            b.append(String.format(Locale.ROOT,
                    "- Same target, from CPU per call on the key service's side (the audit service and its "
                            + "PostgreSQL on their own hosts, as deployed; they kept up, see the audit check): **%s** — "
                            + "**%s**.%n", String.join(", ", keyRows),
                    keyMet ? "target met on every row" : "target missed on some rows"));
            b.append(String.format(Locale.ROOT,
                    "- Same target, from the CPU per call of the key service process alone (with its PostgreSQL; "
                            + "clients and the audit service on other hosts): **%s** — **%s**.%n",
                    String.join(", ", aloneRows), aloneMet ? "target met on every row" : "target missed on some rows"));
        }
        return b.toString();
    }

    /** The markdown between the section markers, markers excluded. */
    String section() {
        return "## Audit service: append, verify, and what auditing costs Encrypt\n\n"
                + "Run " + machine.date() + " on " + machine.describe() + ". "
                + "The benchmark client, the audit service and the key service (each with its own embedded PostgreSQL, "
                + "fsync and `synchronous_commit` on) share this machine; 1-minute load average " + loadAtStart
                + " at the start, " + loadAfterAppend + " after append and verify, " + loadAtEnd + " at the end.\n\n"
                + "Run with `java -jar bench/target/tpmkms-bench.jar --audit` (about 13 minutes). It starts "
                + "`audit-service/target/quarkus-app/quarkus-run.jar` with a fresh data directory (its own embedded "
                + "PostgreSQL, default checkpoint settings: every 1000 records or 10 s) and: (1) sends AppendEvents of "
                + options.batch() + " new events (random UUID event ids, fields the size of the key service's) from "
                + "closed-loop client threads over min(clients, " + options.channels() + ") channels, a "
                + seconds(options.warmup()) + " warm-up then a " + seconds(options.window()) + " window per row; every "
                + "answer must carry one consecutive sequence per event; (2) appends through the same path until the "
                + "chain holds " + String.format(Locale.ROOT, "%,d", options.verifyRecords()) + " records and calls "
                + "VerifyChain over the whole chain twice; (3) starts `key-service/target/quarkus-app/quarkus-run.jar` "
                + "twice side by side, each with a fresh data directory: once with `TPMKMS_AUDIT_ENABLED=false`, once with "
                + "`TPMKMS_AUDIT_ENABLED=true` and `TPMKMS_AUDIT_FORWARD_TO=<the audit service>` (every Encrypt appends its "
                + "event to the key service's journal and answers after the fdatasync that covers it; a forwarder ships "
                + "the journal, ADR 0016), and measures "
                + "Encrypt on one, then the other, alternating, " + options.rounds() + " round(s) per row (off, on, off, "
                + "on, ...; before the first row each service is warmed up (JIT) for " + Report.seconds(options.jitWarmup())
                + " from blocking threads, then as long with as many calls in flight as the highest row: both see the same background load of this shared machine; a row adds up its windows, p50 is "
                + "the mean of the windows' p50, p99 the highest window p99, the cost cell gives the rounds' range): "
                + "first from blocking client threads, then from asynchronous stubs with N calls always in flight ("
                + inFlightList() + "); then waits until the audit chain stops growing and counts the key's Encrypt "
                + "records through QueryRecords. "
                + "Options: `--audit-jar`, `--service-jar`, `--warmup`, `--measure`, `--jit-warmup 40s`, "
                + "`--append-threads 8`, `--batch 250`, `--verify-records 1000000`, `--threads 8,32`, "
                + "`--in-flight 32,64,128,256,512`, `--rounds 2`, `--channels 4`, `--key-env NAME=VALUE` (both key "
                + "services), `--on-env NAME=VALUE` (the auditing-on one only, e.g. `TPMKMS_AUDIT_JOURNAL_COMMIT_INTERVAL=2ms`), `--no-forward` (diagnostic: events are not forwarded, no count check, "
                + "no report), `--report`, `--no-report`. The run fails (section not written) on any failed call, an invalid chain "
                + "or a count mismatch.\n\n"
                + tables() + "\n"
                + verdicts();
    }

    /** "57 %", followed by the rounds' range when there were several: "57 % (52–61)". */
    private String costCell(double cost, String key) {
        String c = String.format(Locale.ROOT, "%.0f %%", cost * 100);
        List<Double> rounds = roundCosts == null ? List.of() : roundCosts.getOrDefault(key, List.of());
        if (rounds.size() < 2) {
            return c;
        }
        double lo = rounds.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
        double hi = rounds.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
        return String.format(Locale.ROOT, "%s (%.0f–%.0f)", c, lo * 100, hi * 100);
    }

    private String inFlightList() {
        return options.inFlight().isEmpty() ? "none" : options.inFlight().toString().replaceAll("[\\[\\] ]", "");
    }

    private static String millis(double micros) {
        return String.format(Locale.ROOT, "%.1f", micros / 1000);
    }

    private static String seconds(Duration d) {
        return String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }
}

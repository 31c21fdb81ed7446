package io.tpmkms.bench;

import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * The figures of one TPM run and how they read. The target (issue): gRPC Sign ECDSA reaches at least
 * {@value #TARGET_RATIO} of the raw TPM rate. Measured as gRPC Sign at its best client count divided
 * by the raw rate at the same thread count; when the raw rows do not have that count, by the best
 * raw rate (the TPM serialises every command, so the raw rate is its ceiling at any count).
 */
record TpmReport(MachineInfo machine, String swtpmVersion, TpmBenchmark.Options options,
                 List<Measurement> measurements, List<Measurement> alternating, String loadAtStart, String loadAtEnd) {

    static final double TARGET_RATIO = 0.9;

    long errors() {
        return measurements.stream().mapToLong(Measurement::errors).sum()
                + alternating.stream().mapToLong(Measurement::errors).sum();
    }

    /** The median rate of a workload's alternating rounds; empty when it has none. */
    OptionalDouble median(String workload) {
        double[] r = alternating.stream().filter(m -> m.workload().equals(workload))
                .mapToDouble(Measurement::opsPerSecond).sorted().toArray();
        if (r.length == 0) {
            return OptionalDouble.empty();
        }
        return OptionalDouble.of(r.length % 2 == 1 ? r[r.length / 2] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2);
    }

    Optional<Measurement> find(String workload, int threads) {
        return measurements.stream().filter(m -> m.workload().equals(workload) && m.threads() == threads).findFirst();
    }

    Optional<Measurement> best(String workload) {
        return measurements.stream().filter(m -> m.workload().equals(workload))
                .max(Comparator.comparingDouble(Measurement::opsPerSecond));
    }

    /** The raw row to compare a gRPC row with: same thread count, else the best raw row. */
    Optional<Measurement> rawFor(String rawWorkload, int threads) {
        Optional<Measurement> same = find(rawWorkload, threads);
        return same.isPresent() ? same : best(rawWorkload);
    }

    /** gRPC ECDSA at its best client count / raw ECDSA (see the class comment). */
    OptionalDouble targetRatio() {
        return ratio("grpc-tpm-ecdsa", "raw-tpm-ecdsa");
    }

    OptionalDouble ratio(String grpcWorkload, String rawWorkload) {
        Optional<Measurement> g = best(grpcWorkload);
        if (g.isEmpty()) {
            return OptionalDouble.empty();
        }
        Optional<Measurement> r = rawFor(rawWorkload, g.get().threads());
        if (r.isEmpty() || r.get().opsPerSecond() == 0) {
            return OptionalDouble.empty();
        }
        return OptionalDouble.of(g.get().opsPerSecond() / r.get().opsPerSecond());
    }

    String table() {
        StringBuilder b = new StringBuilder();
        b.append("| Workload | Clients | ops/s | p50 (µs) | p99 (µs) | Errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|\n");
        for (Measurement m : measurements) {
            b.append(String.format(Locale.ROOT, "| %s | %d | %,.0f | %s | %s | %d |%n",
                    m.description(), m.threads(), m.opsPerSecond(), Report.micros(m.p50Micros()),
                    Report.micros(m.p99Micros()), m.errors()));
        }
        return b.toString();
    }

    String verdict() {
        OptionalDouble r = targetRatio();
        if (r.isEmpty()) {
            return "Target (gRPC Sign ECDSA >= " + TARGET_RATIO + " x raw TPM rate): not measured in this run.";
        }
        Measurement g = best("grpc-tpm-ecdsa").orElseThrow();
        Measurement raw = rawFor("raw-tpm-ecdsa", g.threads()).orElseThrow();
        boolean met = r.getAsDouble() >= TARGET_RATIO;
        return String.format(Locale.ROOT,
                "Target: gRPC Sign ECDSA P-256 reaches at least %.0f %% of the raw TPM rate. Measured: gRPC Sign "
                        + "at its best client count (%d) = %,.0f ops/s, raw TPM Sign at %d thread%s = %,.0f ops/s%s, "
                        + "ratio **%.2f** — **%s**.",
                TARGET_RATIO * 100, g.threads(), g.opsPerSecond(), raw.threads(), raw.threads() == 1 ? "" : "s",
                raw.opsPerSecond(), raw.threads() == g.threads() ? "" : " (the best raw row; no raw row at "
                        + g.threads() + ")",
                r.getAsDouble(), met ? "target met" : "target missed");
    }

    /**
     * The target for DUPLICABLE keys (ADR 0025: every Sign is a policy session's three assertions and an
     * HMAC-authorized Sign), read from the medians of the alternating rounds: gRPC Sign on the policy key
     * at {@value TpmBenchmark#ALTERNATING_GRPC_CLIENTS} clients against the raw policy-session rate (one
     * thread), and what the policy session costs against the plain HMAC session of a NON_EXPORTABLE key, raw and over gRPC.
     */
    String policyVerdict() {
        OptionalDouble rawPassword = median("raw-tpm-ecdsa");
        OptionalDouble rawPolicy = median("raw-tpm-ecdsa-policy");
        OptionalDouble grpcPassword = median("grpc-tpm-ecdsa");
        OptionalDouble grpcPolicy = median("grpc-tpm-ecdsa-policy");
        if (rawPolicy.isEmpty() || grpcPolicy.isEmpty() || rawPassword.isEmpty() || grpcPassword.isEmpty()
                || rawPolicy.getAsDouble() == 0 || rawPassword.getAsDouble() == 0 || grpcPassword.getAsDouble() == 0) {
            return "Policy sessions: not measured in this run.";
        }
        double r = grpcPolicy.getAsDouble() / rawPolicy.getAsDouble();
        return String.format(Locale.ROOT, "DUPLICABLE keys (policy sessions), medians of %d alternating rounds: gRPC Sign "
                        + "at %d clients = %,.0f ops/s against the raw TPM Sign with the same policy session (one thread) "
                        + "= %,.0f ops/s, ratio **%.2f** — **%s**. What the policy session costs against the HMAC "
                        + "session of a NON_EXPORTABLE key: raw %,.0f vs %,.0f ops/s (%+.0f %%), gRPC %,.0f vs %,.0f ops/s (%+.0f %%).",
                TpmBenchmark.ALTERNATING_ROUNDS, TpmBenchmark.ALTERNATING_GRPC_CLIENTS, grpcPolicy.getAsDouble(),
                rawPolicy.getAsDouble(), r, r >= TARGET_RATIO ? "target met" : "target missed",
                rawPolicy.getAsDouble(), rawPassword.getAsDouble(),
                100 * (rawPolicy.getAsDouble() / rawPassword.getAsDouble() - 1),
                grpcPolicy.getAsDouble(), grpcPassword.getAsDouble(),
                100 * (grpcPolicy.getAsDouble() / grpcPassword.getAsDouble() - 1));
    }

    /** gRPC / raw at each thread count both have, per operation, and against the tpm2_sign loop. */
    String otherRatios() {
        StringBuilder b = new StringBuilder("gRPC / raw at equal concurrency:");
        String[][] pairs = {{"ECDSA", "grpc-tpm-ecdsa", "raw-tpm-ecdsa"},
            {"ECDSA DUPLICABLE (policy session)", "grpc-tpm-ecdsa-policy", "raw-tpm-ecdsa-policy"},
            {"RSA-2048", "grpc-tpm-rsa", "raw-tpm-rsa"},
            {"AES-GCM encrypt", "grpc-tpm-aes", "raw-tpm-aes"}};
        boolean any = false;
        for (String[] p : pairs) {
            for (Measurement g : measurements) {
                if (!g.workload().equals(p[1])) {
                    continue;
                }
                Optional<Measurement> r = find(p[2], g.threads());
                if (r.isPresent() && r.get().opsPerSecond() > 0) {
                    b.append(any ? "; " : " ").append(String.format(Locale.ROOT, "%s @%d = %.2f", p[0], g.threads(),
                            g.opsPerSecond() / r.get().opsPerSecond()));
                    any = true;
                }
            }
        }
        if (!any) {
            b.append(" none measured");
        }
        b.append('.');
        Optional<Measurement> loop = find("tpm2-sign", 1);
        Optional<Measurement> g = best("grpc-tpm-ecdsa");
        if (loop.isPresent() && loop.get().opsPerSecond() > 0 && g.isPresent()) {
            b.append(String.format(Locale.ROOT, " Best gRPC Sign ECDSA / tpm2_sign loop = %.0f x.",
                    g.get().opsPerSecond() / loop.get().opsPerSecond()));
        }
        return b.toString();
    }

    /** The markdown between the section markers, markers excluded. */
    String section() {
        return "## TPM (swtpm): gRPC against the raw TPM backend and tpm2_sign\n\n"
                + "Run " + machine.date() + " on " + machine.describe() + ", " + swtpmVersion
                + " on a UNIX socket (fresh state). The benchmark client, the swtpm and the key service (with its "
                + "embedded PostgreSQL) share this machine; 1-minute load average " + loadAtStart + " at the start, "
                + loadAtEnd + " at the end.\n\n"
                + "In order, on the same swtpm, never two clients at once (swtpm serves one connection at a time): "
                + String.format(Locale.ROOT, "a `tpm2_sign` loop (%d signatures, one process each); ",
                options.tpm2SignOps())
                + "the raw rate, `TpmKeyProtectionBackend` in the benchmark JVM on its own connection (closed "
                + "afterwards); then the key service started on the swtpm (`TPMKMS_BACKEND_TPM_TRANSPORT=unix`), "
                + "keys created with protection level TPM, measured over gRPC, auditing off (its cost is "
                + "measured in the audit section). "
                + String.format(Locale.ROOT,
                "Raw and gRPC rows: %s warm-up, then %s measured, closed loop; gRPC over min(clients, %d) channels. ",
                seconds(options.warmup()), seconds(options.window()), options.channels())
                + "The raw rows at 8 threads are not parallel: every TPM command takes the backend's one connection "
                + "lock and swtpm is single-threaded, so 8 threads only queue.\n\n"
                + table() + "\n"
                + verdict() + "\n\n"
                + policyVerdict() + "\n\n"
                + otherRatios() + "\n";
    }

    private static String seconds(java.time.Duration d) {
        return String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }
}

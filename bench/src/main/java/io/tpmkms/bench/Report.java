package io.tpmkms.bench;

import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * The figures of one run and how they read: the table, the ratio the issue sets a target for
 * (gRPC Encrypt / empty gRPC call at the highest concurrency measured, target at least
 * {@value #TARGET_RATIO}) and the markdown section of {@code docs/benchmarks.md}.
 */
record Report(MachineInfo machine, Duration warmup, Duration window, int channels, List<Integer> threads,
              List<Measurement> measurements, String loadAtStart, String loadAtEnd) {

    static final double TARGET_RATIO = 0.5;
    static final String SECTION = "key-service";

    long errors() {
        return measurements.stream().mapToLong(Measurement::errors).sum();
    }

    int topThreads() {
        return threads.stream().mapToInt(Integer::intValue).max().orElse(1);
    }

    Optional<Measurement> find(String workload, int threadCount) {
        return measurements.stream()
                .filter(m -> m.workload().equals(workload) && m.threads() == threadCount)
                .findFirst();
    }

    /** {@code a / b} in ops/s at the highest concurrency, if both were measured. */
    OptionalDouble ratio(String a, String b) {
        int n = topThreads();
        Optional<Measurement> x = find(a, n);
        Optional<Measurement> y = find(b, n);
        if (x.isEmpty() || y.isEmpty() || y.get().opsPerSecond() == 0) {
            return OptionalDouble.empty();
        }
        return OptionalDouble.of(x.get().opsPerSecond() / y.get().opsPerSecond());
    }

    OptionalDouble targetRatio() {
        return ratio("grpc-encrypt", "grpc-empty");
    }

    String table() {
        StringBuilder b = new StringBuilder();
        b.append("| Workload | Clients | ops/s | p50 (µs) | p99 (µs) | Errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|\n");
        for (Measurement m : measurements) {
            b.append(String.format(Locale.ROOT, "| %s | %d | %,.0f | %s | %s | %d |%n",
                    m.description(), m.threads(), m.opsPerSecond(), micros(m.p50Micros()), micros(m.p99Micros()),
                    m.errors()));
        }
        return b.toString();
    }

    String verdict() {
        int n = topThreads();
        OptionalDouble r = targetRatio();
        if (r.isEmpty()) {
            return "Target (gRPC Encrypt >= " + TARGET_RATIO + " x empty call at " + n + " clients): not measured in this run.";
        }
        double enc = find("grpc-encrypt", n).orElseThrow().opsPerSecond();
        double empty = find("grpc-empty", n).orElseThrow().opsPerSecond();
        boolean met = r.getAsDouble() >= TARGET_RATIO;
        return String.format(Locale.ROOT,
                "Target: gRPC Encrypt reaches at least %.1f x the empty-call rate at %d clients. "
                        + "Measured: Encrypt@%d = %,.0f ops/s, empty@%d = %,.0f ops/s, ratio **%.2f** — **%s**.",
                TARGET_RATIO, n, n, enc, n, empty, r.getAsDouble(), met ? "target met" : "target missed");
    }

    String otherRatios() {
        int n = topThreads();
        StringBuilder b = new StringBuilder("Other ratios at " + n + " clients:");
        append(b, "Sign / empty call", ratio("grpc-sign", "grpc-empty"));
        append(b, "gRPC Encrypt / in-process AES-GCM", ratio("grpc-encrypt", "local-aes-gcm"));
        append(b, "gRPC Sign / in-process ECDSA", ratio("grpc-sign", "local-ecdsa"));
        return b.append('.').toString();
    }

    private static void append(StringBuilder b, String label, OptionalDouble r) {
        if (r.isPresent()) {
            b.append(b.charAt(b.length() - 1) == ':' ? " " : "; ").append(label)
                    .append(String.format(Locale.ROOT, " = %.2f", r.getAsDouble()));
        }
    }

    /** The markdown between the section markers, markers excluded. */
    String section() {
        return "## Key service over gRPC (software backend)\n\n"
                + "Run " + machine.date() + " on " + machine.describe() + ". "
                + "Auditing off (`TPMKMS_AUDIT_ENABLED=false`): its cost is measured in the audit section. "
                + "The benchmark client and the key service (with its embedded PostgreSQL) share this machine; "
                + "1-minute load average " + loadAtStart + " at the start, " + loadAtEnd + " at the end.\n\n"
                + String.format(Locale.ROOT,
                "Each row: %s warm-up, then %s measured; closed loop, each client thread calls back to back; "
                        + "blocking stubs over min(clients, %d) channels.%n%n",
                seconds(warmup), seconds(window), channels)
                + table() + "\n"
                + verdict() + "\n\n"
                + otherRatios() + "\n";
    }

    /** Whole microseconds, one decimal below 10 µs (in-process AES is about 1 µs). */
    static String micros(double us) {
        return us < 10 ? String.format(Locale.ROOT, "%.1f", us) : String.format(Locale.ROOT, "%,.0f", us);
    }

    static String seconds(Duration d) {
        return String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }
}

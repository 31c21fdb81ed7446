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
    /** gRPC Sign ECDSA P-256 / empty call (issue 17). */
    static final double SIGN_TARGET_RATIO = 0.5;
    /** gRPC Sign RSA-2048 on the native provider / the same on the Java providers (issue 17). */
    static final double RSA_TARGET_FACTOR = 5.0;
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
        return String.join("\n\n",
                target("gRPC Encrypt", "grpc-encrypt", "the empty-call rate", "empty", "grpc-empty", TARGET_RATIO),
                target("gRPC Sign ECDSA P-256 (SOFTWARE key)", "grpc-sign", "the empty-call rate", "empty",
                        "grpc-empty", SIGN_TARGET_RATIO),
                target("gRPC Sign RSA-2048 (SOFTWARE key, native provider)", "grpc-sign-rsa",
                        "the same on the Java providers", "Java", "grpc-sign-rsa-java", RSA_TARGET_FACTOR));
    }

    private String target(String what, String a, String against, String shortName, String b, double factor) {
        int n = topThreads();
        OptionalDouble r = ratio(a, b);
        if (r.isEmpty()) {
            return String.format(Locale.ROOT, "Target (%s >= %.1f x %s at %d clients): not measured in this run.",
                    what, factor, against, n);
        }
        double x = find(a, n).orElseThrow().opsPerSecond();
        double y = find(b, n).orElseThrow().opsPerSecond();
        return String.format(Locale.ROOT,
                "Target: %s reaches at least %.1f x %s at %d clients. Measured: %,.0f ops/s, %s %,.0f ops/s, "
                        + "ratio **%.2f** — **%s**.",
                what, factor, against, n, x, shortName, y, r.getAsDouble(),
                r.getAsDouble() >= factor ? "target met" : "target missed");
    }

    String otherRatios() {
        int n = topThreads();
        StringBuilder b = new StringBuilder("Other ratios at " + n + " clients:");
        append(b, "Sign / empty call", ratio("grpc-sign", "grpc-empty"));
        append(b, "gRPC Encrypt / in-process AES-GCM", ratio("grpc-encrypt", "local-aes-gcm"));
        append(b, "gRPC Sign / in-process ECDSA (JDK)", ratio("grpc-sign", "local-ecdsa"));
        append(b, "gRPC Sign / in-process ECDSA (native)", ratio("grpc-sign", "local-ecdsa-native"));
        append(b, "gRPC Sign ECDSA native / Java providers", ratio("grpc-sign", "grpc-sign-java"));
        append(b, "gRPC Sign RSA / in-process RSA (native)", ratio("grpc-sign-rsa", "local-rsa-native"));
        return b.append('.').toString();
    }

    /**
     * The in-process rows side by side, one line per algorithm, at one client (the per-core rate a
     * provider choice rests on, ADR 0027) and at the highest concurrency.
     */
    String providerTable() {
        int n = topThreads();
        int one = threads.stream().mapToInt(Integer::intValue).min().orElse(1);
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "| In-process, ops/s (%d / %d clients) | JDK | Bouncy Castle | Conscrypt (native) |%n",
                one, n));
        b.append("|---|---:|---:|---:|\n");
        providerRow(b, "ECDSA P-256 sign (SHA-256, 1 KiB)", "local-ecdsa", one, n);
        providerRow(b, "RSA-2048 PKCS#1 sign (SHA-256, 1 KiB)", "local-rsa", one, n);
        providerRow(b, "AES-256-GCM encrypt (1 KiB)", "local-aes-gcm", one, n);
        return b.toString();
    }

    private void providerRow(StringBuilder b, String label, String base, int one, int n) {
        b.append("| ").append(label);
        for (String suffix : List.of("", "-bc", "-native")) {
            Optional<Measurement> x = find(base + suffix, one);
            Optional<Measurement> y = find(base + suffix, n);
            b.append(" | ").append(x.isEmpty() ? "-" : String.format(Locale.ROOT, "%,.0f / %,.0f",
                    x.get().opsPerSecond(), y.map(Measurement::opsPerSecond).orElse(0.0)));
        }
        b.append(" |\n");
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
                + providerTable() + "\n"
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

package io.tpmkms.bench;

import io.tpmkms.devtools.ServiceProcess;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The CLI suite ({@code --cli}): how long one {@code tpmkms keys list} takes from the shell, start-up
 * included, against a running key service, next to {@code java -version} — the floor of any JVM
 * program on this machine — measured in the same run, the commands interleaved round by round so that
 * the machine's noise falls on all of them alike (ADR 0018).
 *
 * <p>Rows: {@code java -version} (default JVM options), {@code java -version} with the wrapper's JVM
 * options, {@code ./tpmkms keys list} (the wrapper as users run it: C1, serial GC, the class-data
 * sharing archive) and {@code java -jar tpmkms-cli.jar keys list} (the same jar without any of those).
 * Before the rounds, one unmeasured {@code ./tpmkms keys create} creates the listed key and, when the
 * archive is missing or stale, makes it (its training run).
 */
final class CliBenchmark {

    static final String SECTION = "cli";
    static final String USAGE = "usage: java -jar tpmkms-bench.jar --cli [--rounds 30] [--service-jar PATH]"
            + " [--wrapper ./tpmkms] [--cli-jar cli/target/tpmkms-cli.jar] [--report docs/benchmarks.md | --no-report]";
    /** The target of issue 19: p50 of {@code ./tpmkms keys list} on this machine. */
    static final double TARGET_P50_MS = 400;
    /** The {@code tpmkms} script's JVM options, but its archive (the heap in huge pages where the kernel offers them). */
    static final List<String> WRAPPER_JVM_OPTIONS = wrapperJvmOptions();

    private static List<String> wrapperJvmOptions() {
        List<String> options = new ArrayList<>(List.of("-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1",
                "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xshare:auto"));
        try {
            String thp = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
            if (thp.contains("[always]") || thp.contains("[madvise]")) {
                options.add("-XX:+UseTransparentHugePages");
            }
        } catch (java.io.IOException | RuntimeException e) {
            // no THP on this system: the script does not ask for it either
        }
        return List.copyOf(options);
    }

    record Options(Path serviceJar, Path wrapper, Path cliJar, int rounds, Path report) {
        static Options defaults() {
            return new Options(Path.of("key-service/target/quarkus-app/quarkus-run.jar"), Path.of("tpmkms"),
                    Path.of("cli/target/tpmkms-cli.jar"), 30, Path.of("docs/benchmarks.md"));
        }

        static Options parse(String... args) {
            Options o = defaults();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--cli" -> { }
                    case "--service-jar" -> o = new Options(Path.of(value(args, ++i, a)), o.wrapper, o.cliJar, o.rounds, o.report);
                    case "--wrapper" -> o = new Options(o.serviceJar, Path.of(value(args, ++i, a)), o.cliJar, o.rounds, o.report);
                    case "--cli-jar" -> o = new Options(o.serviceJar, o.wrapper, Path.of(value(args, ++i, a)), o.rounds, o.report);
                    case "--rounds" -> {
                        int n = Integer.parseInt(value(args, ++i, a));
                        if (n < 1) throw new IllegalArgumentException("--rounds needs a positive integer");
                        o = new Options(o.serviceJar, o.wrapper, o.cliJar, n, o.report);
                    }
                    case "--report" -> o = new Options(o.serviceJar, o.wrapper, o.cliJar, o.rounds, Path.of(value(args, ++i, a)));
                    case "--no-report" -> o = new Options(o.serviceJar, o.wrapper, o.cliJar, o.rounds, null);
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            return o;
        }

        private static String value(String[] args, int i, String option) {
            if (i >= args.length) throw new IllegalArgumentException(option + " needs a value");
            return args[i];
        }
    }

    /** One command's wall times, in milliseconds, in round order. */
    record Row(String label, List<Double> millis, int failures) {
        double percentile(double p) {
            double[] sorted = millis.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            if (sorted.length == 0) return Double.NaN;
            int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
            return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
        }
    }

    record Result(MachineInfo machine, int rounds, List<Row> rows, String loadAtStart, String loadAtEnd) {
        Row row(String prefix) {
            return rows.stream().filter(r -> r.label().startsWith(prefix)).findFirst().orElseThrow();
        }

        int failures() {
            return rows.stream().mapToInt(Row::failures).sum();
        }

        String table() {
            StringBuilder b = new StringBuilder("| command | p50 ms | p90 ms | min ms | p50 ÷ `java -version` |\n"
                    + "|---|---:|---:|---:|---:|\n");
            double floor = rows.get(0).percentile(50);
            for (Row r : rows) {
                b.append(String.format(Locale.ROOT, "| %s | %.0f | %.0f | %.0f | %.1f× |%n", r.label(),
                        r.percentile(50), r.percentile(90), r.percentile(0), r.percentile(50) / floor));
            }
            return b.toString();
        }

        String verdict() {
            double p50 = row("`./tpmkms").percentile(50);
            double floor = rows.get(0).percentile(50);
            return String.format(Locale.ROOT, "`./tpmkms keys list` p50 %.0f ms (target ≤ %.0f ms: %s); "
                    + "%.0f ms above `java -version`; without the wrapper's options and archive %.0f ms.",
                    p50, TARGET_P50_MS, p50 <= TARGET_P50_MS ? "met" : "missed", p50 - floor,
                    row("`java -jar").percentile(50));
        }

        String section() {
            return "## CLI start-up\n\n"
                    + "Run: " + machine.describe() + "; " + rounds + " rounds, each running every command once in "
                    + "turn against one key service (auth off, one key in the listed namespace); load average at "
                    + "start " + loadAtStart + ", at end " + loadAtEnd + ". Wall time from process start to exit, "
                    + "output discarded.\n\n" + table() + "\n" + verdict() + "\n\n"
                    + "Reproduce: `java -jar bench/target/tpmkms-bench.jar --cli` (after `./mvnw -B package -DskipTests`).\n";
        }
    }

    private CliBenchmark() {
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

    static Result run(Options options, PrintStream progress) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadAtStart = MachineInfo.loadAverage();
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        progress.println("tpmkms-bench: starting " + options.serviceJar());
        try (ServiceProcess service = ServiceProcess.start(options.serviceJar(), Duration.ofSeconds(90),
                Map.of("TPMKMS_AUDIT_ENABLED", "false"))) {
            Map<String, String> env = new LinkedHashMap<>();
            env.put("TPMKMS_ADDRESS", service.target());
            env.put("TPMKMS_TOKEN", "bench-token-auth-off");
            env.put("TPMKMS_CONFIG_DIR", service.dataDir().resolve("cli-config").toString());
            String wrapper = options.wrapper().toAbsolutePath().toString();
            int created = exec(List.of("bash", wrapper, "keys", "create", "bench/cli", "--purpose", "encrypt"), env);
            if (created != 0) throw new IllegalStateException("./tpmkms keys create failed with exit " + created);

            Map<String, List<String>> commands = new LinkedHashMap<>();
            commands.put("`java -version`", List.of(javaBin, "-version"));
            List<String> tuned = new ArrayList<>(List.of(javaBin));
            tuned.addAll(WRAPPER_JVM_OPTIONS);
            tuned.add("-version");
            commands.put("`java -version` with the wrapper's JVM options", tuned);
            commands.put("`./tpmkms keys list` (wrapper: options + CDS archive)",
                    List.of("bash", wrapper, "keys", "list", "--namespace", "bench"));
            commands.put("`java -jar tpmkms-cli.jar keys list` (no options, no archive)",
                    List.of(javaBin, "-jar", options.cliJar().toAbsolutePath().toString(), "keys", "list", "--namespace", "bench"));

            Map<String, List<Double>> times = new LinkedHashMap<>();
            Map<String, Integer> failures = new LinkedHashMap<>();
            commands.keySet().forEach(k -> { times.put(k, new ArrayList<>()); failures.put(k, 0); });
            for (int round = 0; round < options.rounds(); round++) {
                for (Map.Entry<String, List<String>> c : commands.entrySet()) {
                    long t0 = System.nanoTime();
                    int exit = exec(c.getValue(), env);
                    double ms = (System.nanoTime() - t0) / 1e6;
                    if (exit == 0) times.get(c.getKey()).add(ms);
                    else failures.merge(c.getKey(), 1, Integer::sum);
                }
            }
            List<Row> rows = new ArrayList<>();
            commands.keySet().forEach(k -> rows.add(new Row(k, List.copyOf(times.get(k)), failures.get(k))));
            Result result = new Result(machine, options.rounds(), rows, loadAtStart, MachineInfo.loadAverage());
            progress.println();
            progress.print(result.table());
            progress.println();
            progress.println(result.verdict());
            if (result.failures() > 0) {
                progress.println("tpmkms-bench: " + result.failures() + " commands failed; the report is not written.");
            } else if (options.report() != null) {
                ReportDocument.write(options.report(), SECTION, result.section());
                progress.println("tpmkms-bench: wrote section '" + SECTION + "' of " + options.report());
            }
            return result;
        }
    }

    private static int exec(List<String> command, Map<String, String> env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().putAll(env);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", command) + " did not finish in 60 s");
        }
        return p.exitValue();
    }

    static boolean archiveExists(Path cliJar) {
        String name = cliJar.getFileName().toString();
        return Files.isRegularFile(cliJar.resolveSibling(name.substring(0, name.length() - 4) + ".jsa"));
    }
}

package io.tpmkms.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;

/** Where and when a run happened, for the report. Read from the JVM and {@code /proc} when present. */
record MachineInfo(int cpus, String cpuModel, String memory, String jdk, String os, Instant date) {

    static MachineInfo current() {
        return new MachineInfo(
                Runtime.getRuntime().availableProcessors(),
                procField("/proc/cpuinfo", "model name").orElse("unknown CPU"),
                procField("/proc/meminfo", "MemTotal")
                        .map(MachineInfo::kibToGib)
                        .orElse("unknown memory"),
                System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"),
                System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"),
                Instant.now().truncatedTo(ChronoUnit.SECONDS));
    }

    /** The 1-minute load average from {@code /proc/loadavg}, or "?" where there is none. */
    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+")[0];
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    String describe() {
        return cpus + " CPUs (" + cpuModel + "), " + memory + " RAM, " + jdk + ", " + os;
    }

    private static String kibToGib(String meminfo) {
        String digits = meminfo.replaceAll("[^0-9]", "");
        if (digits.isEmpty()) {
            return meminfo;
        }
        return String.format(Locale.ROOT, "%.1f GiB", Long.parseLong(digits) / 1024.0 / 1024.0);
    }

    private static java.util.Optional<String> procField(String file, String field) {
        try {
            List<String> lines = Files.readAllLines(Path.of(file));
            return lines.stream()
                    .filter(l -> l.startsWith(field))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst();
        } catch (IOException | RuntimeException e) {
            return java.util.Optional.empty();
        }
    }
}

package io.tpmkms.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * CPU time used by named groups of processes (Linux {@code /proc}): a service's JVM, the embedded
 * PostgreSQL under its data directory (the postmaster and every backend it forked), this benchmark's
 * own JVM. On a CPU-bound box throughput is cores / CPU per operation, so CPU per operation, unlike
 * operations per second, hardly moves with what else the machine is doing.
 */
final class CpuMeter {
    /** Clock ticks per second of {@code /proc/<pid>/stat} (USER_HZ; 100 on every Linux this runs on). */
    private static final double TICKS_PER_SECOND = 100;

    private final Map<String, List<Long>> roots = new LinkedHashMap<>();
    private final Map<String, Boolean> withChildren = new HashMap<>();

    /** Adds a group: the process {@code pid} alone (all its threads, not its child processes). */
    CpuMeter process(String name, long pid) {
        roots.computeIfAbsent(name, k -> new ArrayList<>()).add(pid);
        withChildren.put(name, false);
        return this;
    }

    /**
     * Adds a group: the PostgreSQL whose {@code postmaster.pid} is under {@code dataDir}, if one runs, with
     * every backend it forked (and those it already reaped).
     */
    CpuMeter postgres(String name, Path dataDir) {
        postmaster(dataDir).ifPresent(pid -> {
            roots.computeIfAbsent(name, k -> new ArrayList<>()).add(pid);
            withChildren.put(name, true);
        });
        return this;
    }

    /** Seconds of CPU (user + system, including reaped children) of each group, now. */
    Map<String, Double> seconds() {
        Map<Long, Long> parents = parents();
        Map<String, Double> out = new LinkedHashMap<>();
        for (Map.Entry<String, List<Long>> g : roots.entrySet()) {
            long ticks = 0;
            boolean children = withChildren.get(g.getKey());
            for (long root : g.getValue()) {
                for (long pid : children ? tree(root, parents) : Set.of(root)) ticks += ticks(pid, children);
            }
            out.put(g.getKey(), ticks / TICKS_PER_SECOND);
        }
        return out;
    }

    /** One reading of a process's threads: thread id -> (category, seconds of CPU). */
    record Threads(Map<Long, Map.Entry<String, Double>> byTid) {
        /**
         * Seconds per category between {@code before} and this reading: threads present now, minus what they
         * had in {@code before} (0 for threads started since). A thread that ended in between takes its
         * time with it; the process figure of {@link #seconds} is the whole.
         */
        Map<String, Double> since(Threads before) {
            Map<String, Double> out = new LinkedHashMap<>();
            byTid.forEach((tid, now) -> {
                Map.Entry<String, Double> then = before.byTid().get(tid);
                out.merge(now.getKey(), now.getValue() - (then == null ? 0 : then.getValue()), Double::sum);
            });
            return out;
        }
    }

    /**
     * The threads of a group added with {@link #process}, each with {@code category(thread name)} (the
     * kernel's 15-character name) and its CPU seconds so far.
     */
    Threads threads(String group, java.util.function.Function<String, String> category) {
        Map<Long, Map.Entry<String, Double>> out = new HashMap<>();
        for (long pid : roots.getOrDefault(group, List.of())) {
            try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
                for (Path t : (Iterable<Path>) tasks::iterator) {
                    try {
                        String s = Files.readString(t.resolve("stat"));
                        String name = s.substring(s.indexOf('(') + 1, s.lastIndexOf(')'));
                        String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
                        long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
                        out.put(Long.parseLong(t.getFileName().toString()),
                                Map.entry(category.apply(name), ticks / TICKS_PER_SECOND));
                    } catch (IOException | RuntimeException e) {
                        // the thread ended
                    }
                }
            } catch (IOException e) {
                // the process ended
            }
        }
        return new Threads(out);
    }

    /** {@code after - before}, group by group. */
    static Map<String, Double> minus(Map<String, Double> after, Map<String, Double> before) {
        Map<String, Double> out = new LinkedHashMap<>();
        after.forEach((k, v) -> out.put(k, v - before.getOrDefault(k, 0.0)));
        return out;
    }

    private static Optional<Long> postmaster(Path dataDir) {
        try (Stream<Path> files = Files.walk(dataDir, 4)) {
            Optional<Path> pidFile = files.filter(p -> p.getFileName().toString().equals("postmaster.pid")).findFirst();
            if (pidFile.isEmpty()) return Optional.empty();
            return Optional.of(Long.parseLong(Files.readAllLines(pidFile.get()).get(0).trim()));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static Set<Long> tree(long root, Map<Long, Long> parents) {
        Set<Long> out = new HashSet<>();
        out.add(root);
        boolean grew = true;
        while (grew) {
            grew = false;
            for (Map.Entry<Long, Long> e : parents.entrySet()) {
                if (out.contains(e.getValue()) && out.add(e.getKey())) grew = true;
            }
        }
        return out;
    }

    /** pid -> parent pid of every process. */
    private static Map<Long, Long> parents() {
        Map<Long, Long> out = new HashMap<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                String name = p.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) continue;
                String[] f = stat(Long.parseLong(name));
                if (f != null) out.put(Long.parseLong(name), Long.parseLong(f[1]));
            }
        } catch (IOException e) {
            // no /proc: no figures
        }
        return out;
    }

    private static long ticks(long pid, boolean reapedChildren) {
        String[] f = stat(pid);
        if (f == null) return 0;
        // after the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), here from index 0 = state
        long own = Long.parseLong(f[11]) + Long.parseLong(f[12]);
        return reapedChildren ? own + Long.parseLong(f[13]) + Long.parseLong(f[14]) : own;
    }

    /** Fields of /proc/pid/stat after the command name, or null if the process is gone. */
    private static String[] stat(long pid) {
        try {
            String s = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return s.substring(s.lastIndexOf(')') + 2).split(" ");
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}

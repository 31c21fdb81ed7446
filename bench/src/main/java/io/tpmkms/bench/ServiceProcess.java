package io.tpmkms.bench;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A packaged tpmkms service (the key service, or the audit service for the audit suite), run as a
 * child JVM with a fresh data directory (so it starts its own
 * embedded PostgreSQL and software root seed there) on free loopback ports.
 *
 * <p>{@link #close()} stops it and everything it started: the JVM is asked to stop (its shutdown
 * hook stops PostgreSQL), then any descendant or any process whose command line names the data
 * directory is killed. PostgreSQL is started through {@code pg_ctl}, so its postmaster is not
 * always a descendant of the JVM; the command-line match catches it. A JVM shutdown hook calls
 * {@link #close()} too, so an interrupted benchmark does not leave a database running. Not
 * thread-safe apart from {@link #close()}, which is idempotent.
 */
final class ServiceProcess implements AutoCloseable {

    /** The key service: {@code TPMKMS_GRPC_PORT} / {@code TPMKMS_HTTP_PORT}. */
    static final Kind KEY_SERVICE = new Kind("key service", "TPMKMS_GRPC_PORT", "TPMKMS_HTTP_PORT",
            "./mvnw -B -q -pl key-service -am package -DskipTests");
    /** The audit service: {@code TPMKMS_AUDIT_GRPC_PORT} / {@code TPMKMS_AUDIT_HTTP_PORT}. */
    static final Kind AUDIT_SERVICE = new Kind("audit service", "TPMKMS_AUDIT_GRPC_PORT", "TPMKMS_AUDIT_HTTP_PORT",
            "./mvnw -B -q -pl audit-service -am package -DskipTests");

    /** Which service a jar is: its name in messages and the environment variables of its ports. */
    record Kind(String name, String grpcPortEnv, String httpPortEnv, String buildCommand) {
    }

    private final Kind kind;
    private final Path workDir;
    private final Path dataDir;
    private final Path log;
    private final int grpcPort;
    private final Process process;
    private final Thread hook;
    private boolean closed;
    private List<String> leftovers = List.of();

    private ServiceProcess(Kind kind, Path workDir, Path dataDir, Path log, int grpcPort, Process process) {
        this.kind = kind;
        this.workDir = workDir;
        this.dataDir = dataDir;
        this.log = log;
        this.grpcPort = grpcPort;
        this.process = process;
        this.hook = new Thread(this::close, "tpmkms-bench-stop-service");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /**
     * Starts the service and waits until its health service answers SERVING.
     *
     * @throws IOException           when the jar is missing or the process cannot start
     * @throws IllegalStateException when the service exits or is not ready within {@code timeout};
     *                               the message ends with the tail of its log
     */
    static ServiceProcess start(Path jar, Duration timeout) throws IOException, InterruptedException {
        return start(jar, timeout, Map.of());
    }

    /**
     * As {@link #start(Path, Duration)}, with extra environment variables for the service (e.g. the
     * {@code TPMKMS_BACKEND_TPM_*} settings that put it on a swtpm).
     */
    static ServiceProcess start(Path jar, Duration timeout, Map<String, String> extraEnv)
            throws IOException, InterruptedException {
        return start(KEY_SERVICE, jar, timeout, extraEnv);
    }

    /** As {@link #start(Path, Duration, Map)} for a service of the given kind. */
    static ServiceProcess start(Kind kind, Path jar, Duration timeout, Map<String, String> extraEnv)
            throws IOException, InterruptedException {
        if (!Files.isRegularFile(jar)) {
            throw new IOException(kind.name() + " jar not found: " + jar.toAbsolutePath()
                    + " (build it: " + kind.buildCommand() + ")");
        }
        Path work = Files.createTempDirectory("tpmkms-bench-");
        Path data = work.resolve("data");
        Path log = work.resolve(kind.name().replace(' ', '-') + ".log");
        int grpcPort = freePort();
        int httpPort = freePort();
        while (httpPort == grpcPort) {
            httpPort = freePort();
        }
        ProcessBuilder pb = new ProcessBuilder(javaBinary(), "-jar", jar.toAbsolutePath().toString())
                .directory(work.toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().put("TPMKMS_DATA_DIR", data.toString());
        pb.environment().put(kind.grpcPortEnv(), Integer.toString(grpcPort));
        pb.environment().put(kind.httpPortEnv(), Integer.toString(httpPort));
        // An inherited database URL would skip the embedded database and point at someone else's.
        pb.environment().remove("QUARKUS_DATASOURCE_JDBC_URL");
        // The suites measure the services themselves: no Keycloak, no policy service (loopback only),
        // unless a suite asks for them (AuthzBenchmark).
        pb.environment().put("TPMKMS_AUTH_MODE", "none");
        pb.environment().putAll(extraEnv);
        ServiceProcess service = new ServiceProcess(kind, work, data, log, grpcPort, pb.start());
        try {
            service.awaitServing(timeout);
            return service;
        } catch (IllegalStateException e) {
            String tail = service.logTail(40);
            service.close();
            throw new IllegalStateException(e.getMessage() + "\n--- " + kind.name() + " log (tail) ---\n" + tail, e);
        } catch (InterruptedException | RuntimeException e) {
            service.close();
            throw e;
        }
    }

    String target() {
        return "127.0.0.1:" + grpcPort;
    }

    boolean isAlive() {
        return process.isAlive();
    }

    long pid() {
        return process.pid();
    }

    Path dataDir() {
        return dataDir;
    }

    /** Processes found still running after the service JVM exited and killed by {@link #close()}. */
    synchronized List<String> leftovers() {
        return leftovers;
    }

    private void awaitServing(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        ManagedChannel channel = Grpc.newChannelBuilder(target(), InsecureChannelCredentials.create()).build();
        try {
            String last = "no answer yet";
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw new IllegalStateException(kind.name() + " exited with " + process.exitValue() + " before it was ready");
                }
                try {
                    HealthCheckResponse r = HealthGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(1, TimeUnit.SECONDS)
                            .check(HealthCheckRequest.getDefaultInstance());
                    if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                        return;
                    }
                    last = "health " + r.getStatus();
                } catch (StatusRuntimeException e) {
                    last = e.getStatus().getCode().toString();
                }
                TimeUnit.MILLISECONDS.sleep(200);
            }
            throw new IllegalStateException(kind.name() + " not SERVING after " + timeout.toSeconds() + " s (" + last + ")");
        } finally {
            channel.shutdownNow();
        }
    }

    /**
     * Stops the service and its PostgreSQL, kills leftovers, deletes the temporary directory.
     * Safe to call more than once and from the shutdown hook.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (Thread.currentThread() != hook) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or about to; nothing to undo
            }
        }
        Map<ProcessHandle, String> family = new LinkedHashMap<>();
        process.descendants().forEach(p -> family.put(p, describe(p)));
        namingDataDir().forEach(p -> family.put(p, describe(p)));

        process.destroy(); // SIGTERM: Quarkus stops, its shutdown hook stops PostgreSQL
        if (!waitFor(process.toHandle(), Duration.ofSeconds(20))) {
            process.destroyForcibly();
            waitFor(process.toHandle(), Duration.ofSeconds(5));
        }
        namingDataDir().forEach(p -> family.putIfAbsent(p, describe(p)));
        List<String> found = new ArrayList<>();
        for (Map.Entry<ProcessHandle, String> e : family.entrySet()) {
            ProcessHandle p = e.getKey();
            // PostgreSQL may still be finishing its fast shutdown when the JVM is gone: give it time.
            if (!waitFor(p, Duration.ofSeconds(5))) {
                found.add(e.getValue());
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                waitFor(p, Duration.ofSeconds(5));
            }
        }
        leftovers = List.copyOf(found);
        if (!found.isEmpty()) {
            System.err.println("tpmkms-bench: killed processes left behind by the " + kind.name() + ": " + found);
        }
        deleteRecursively(workDir);
    }

    private static String describe(ProcessHandle p) {
        return p.pid() + " " + p.info().commandLine().orElse("(command line unknown)");
    }

    /** Live processes whose command line mentions our data directory (the PostgreSQL server). */
    private List<ProcessHandle> namingDataDir() {
        String needle = dataDir.toString();
        try (Stream<ProcessHandle> all = ProcessHandle.allProcesses()) {
            return all.filter(p -> p.pid() != ProcessHandle.current().pid())
                    .filter(p -> p.info().commandLine().map(c -> c.contains(needle)).orElse(false))
                    .collect(Collectors.toList());
        }
    }

    String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static boolean waitFor(ProcessHandle p, Duration d) {
        try {
            p.onExit().get(d.toMillis(), TimeUnit.MILLISECONDS);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        } catch (Exception e) {
            return !p.isAlive();
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    private static String javaBinary() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort: a temp directory
                }
            });
        } catch (IOException ignored) {
            // already gone
        }
    }
}

package io.tpmkms.devtools;

import java.io.IOException;
import java.io.UncheckedIOException;
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
 * A packaged tpmkms service (a Quarkus fast-jar) run as a child JVM, for the tests and the
 * benchmarks that need real processes. Two ways to start one:
 *
 * <ul>
 *   <li>{@link #start(Path, Map, Path)}: the caller chooses every setting and the log file; ready
 *       when the log says Quarkus installed its features. {@link #kill9()} and {@link #restart()}
 *       (same settings, log appended) are for crash tests.
 *   <li>{@link #start(Kind, Path, Duration, Map)}: an isolated service: a fresh temporary
 *       directory holding its data directory (so it starts its own embedded PostgreSQL and
 *       software root seed) and its log, free loopback ports, no authentication unless the caller
 *       sets {@code TPMKMS_AUTH_MODE}; ready when its gRPC health service answers SERVING (this
 *       needs {@code grpc-services} and a gRPC transport on the caller's classpath). {@link #close()}
 *       then also kills what the service left behind — PostgreSQL is started through
 *       {@code pg_ctl}, so its postmaster is not always a descendant of the JVM; a process whose
 *       command line names the data directory is caught too — and deletes the directory. A JVM
 *       shutdown hook calls {@link #close()}, so an interrupted benchmark leaves no database running.
 * </ul>
 *
 * <p>Not thread-safe apart from {@link #close()}, which is idempotent.
 */
public final class ServiceProcess implements AutoCloseable {

  /** The key service: {@code TPMKMS_GRPC_PORT} / {@code TPMKMS_HTTP_PORT}. */
  public static final Kind KEY_SERVICE = new Kind("key service", "TPMKMS_GRPC_PORT", "TPMKMS_HTTP_PORT",
      "./mvnw -B -q -pl key-service -am package -DskipTests");
  /** The audit service: {@code TPMKMS_AUDIT_GRPC_PORT} / {@code TPMKMS_AUDIT_HTTP_PORT}. */
  public static final Kind AUDIT_SERVICE = new Kind("audit service", "TPMKMS_AUDIT_GRPC_PORT",
      "TPMKMS_AUDIT_HTTP_PORT", "./mvnw -B -q -pl audit-service -am package -DskipTests");

  /** Which service a jar is: its name in messages and the environment variables of its ports. */
  public record Kind(String name, String grpcPortEnv, String httpPortEnv, String buildCommand) {
  }

  private final String name;
  private final Path jar;
  private final Map<String, String> env;
  private final Path log;
  /** The temporary directory this object owns and deletes on close; null when the caller chose the paths. */
  private final Path workDir;
  private final Path dataDir;
  private final int grpcPort;
  private Process process;
  private Thread hook;
  private boolean closed;
  private List<String> leftovers = List.of();

  private ServiceProcess(String name, Path jar, Map<String, String> env, Path log, Path workDir, Path dataDir,
      int grpcPort) {
    this.name = name;
    this.jar = jar;
    this.env = new LinkedHashMap<>(env);
    this.log = log;
    this.workDir = workDir;
    this.dataDir = dataDir;
    this.grpcPort = grpcPort;
  }

  /** Starts the jar with these environment variables and waits until it is ready. */
  public static ServiceProcess start(Path jar, Map<String, String> env, Path log) throws Exception {
    if (!Files.exists(jar)) throw new IllegalStateException("not built: " + jar);
    String data = env.get("TPMKMS_DATA_DIR");
    ServiceProcess p = new ServiceProcess(jar.getFileName().toString(), jar, env, log, null,
        data == null ? null : Path.of(data), -1);
    p.startProcess();
    return p;
  }

  /** As {@link #start(Kind, Path, Duration, Map)} for the key service, with no extra settings. */
  public static ServiceProcess start(Path jar, Duration timeout) throws IOException, InterruptedException {
    return start(jar, timeout, Map.of());
  }

  /**
   * As {@link #start(Kind, Path, Duration, Map)} for the key service, with extra environment
   * variables (e.g. the {@code TPMKMS_BACKEND_TPM_*} settings that put it on a swtpm).
   */
  public static ServiceProcess start(Path jar, Duration timeout, Map<String, String> extraEnv)
      throws IOException, InterruptedException {
    return start(KEY_SERVICE, jar, timeout, extraEnv);
  }

  /**
   * Starts an isolated service of the given kind and waits until its health service answers SERVING.
   *
   * @throws IOException           when the jar is missing or the process cannot start
   * @throws IllegalStateException when the service exits or is not ready within {@code timeout};
   *                               the message ends with the tail of its log
   */
  public static ServiceProcess start(Kind kind, Path jar, Duration timeout, Map<String, String> extraEnv)
      throws IOException, InterruptedException {
    return start(kind, jar, timeout, extraEnv, io.tpmkms.tls.ClientTls.plaintext());
  }

  /**
   * As {@link #start(Kind, Path, Duration, Map)} for a service whose gRPC port speaks TLS (its
   * {@code TPMKMS_TLS_SERVER_*} settings in {@code extraEnv}): the readiness probe connects with
   * {@code probe}.
   */
  public static ServiceProcess start(Kind kind, Path jar, Duration timeout, Map<String, String> extraEnv,
      io.tpmkms.tls.ClientTls probe) throws IOException, InterruptedException {
    if (!Files.isRegularFile(jar)) {
      throw new IOException(kind.name() + " jar not found: " + jar.toAbsolutePath()
          + " (build it: " + kind.buildCommand() + ")");
    }
    Path work = Files.createTempDirectory("tpmkms-service-");
    Path data = work.resolve("data");
    Path log = work.resolve(kind.name().replace(' ', '-') + ".log");
    int[] ports = freePorts(2);
    Map<String, String> env = new LinkedHashMap<>();
    env.put("TPMKMS_DATA_DIR", data.toString());
    env.put(kind.grpcPortEnv(), Integer.toString(ports[0]));
    env.put(kind.httpPortEnv(), Integer.toString(ports[1]));
    // The suites measure the services themselves: no Keycloak, no policy service (loopback only),
    // unless a suite asks for them (AuthzBenchmark).
    env.put("TPMKMS_AUTH_MODE", "none");
    env.putAll(extraEnv);
    ServiceProcess service = new ServiceProcess(kind.name(), jar, env, log, work, data, ports[0]);
    try {
      service.launch();
      service.hook = new Thread(service::close, "tpmkms-stop-service");
      Runtime.getRuntime().addShutdownHook(service.hook);
      GrpcHealth.awaitServing(kind.name(), service.target(), service.process, timeout, probe);
      return service;
    } catch (IllegalStateException e) {
      String tail = service.logTail(40);
      service.close();
      throw new IllegalStateException(e.getMessage() + "\n--- " + kind.name() + " log (tail) ---\n" + tail, e);
    } catch (IOException | InterruptedException | RuntimeException e) {
      service.close();
      throw e;
    }
  }

  private void launch() throws IOException {
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", jar.toAbsolutePath().toString())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    if (workDir != null) {
      pb.directory(workDir.toFile());
      // An inherited database URL would skip the embedded database and point at someone else's.
      pb.environment().remove("QUARKUS_DATASOURCE_JDBC_URL");
    }
    pb.environment().putAll(env);
    process = pb.start();
  }

  private void startProcess() throws Exception {
    long offset = Files.exists(log) ? Files.size(log) : 0;
    launch();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (System.nanoTime() < deadline) {
      String out = Files.exists(log) ? tail(offset) : "";
      if (out.contains("Installed features")) return;
      if (!process.isAlive() || out.contains("Failed to start")) {
        throw new IllegalStateException(name + " failed to start:\n" + out);
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(name + " did not start in time:\n" + tail(offset));
  }

  /** SIGKILL: no shutdown hooks, nothing flushed. */
  public void kill9() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** Starts it again with the same settings (a service started by {@link #start(Path, Map, Path)}). */
  public void restart() throws Exception {
    if (process.isAlive()) kill9();
    startProcess();
  }

  /** {@code 127.0.0.1:port} of its gRPC server (a service started by {@link #start(Kind, Path, Duration, Map)}). */
  public String target() {
    if (grpcPort < 0) throw new IllegalStateException("the caller chose the ports of " + name);
    return "127.0.0.1:" + grpcPort;
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public long pid() {
    return process.pid();
  }

  /** Its {@code TPMKMS_DATA_DIR}, or null when none was set. */
  public Path dataDir() {
    return dataDir;
  }

  public Path log() { return log; }

  /** How often a line of the log contains the text. */
  public long countInLog(String text) throws IOException {
    return Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> l.contains(text)).count();
  }

  /** The last lines of its log (for failure messages). */
  public String logTail(int lines) {
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException | UncheckedIOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** Processes found still running after the service JVM exited and killed by {@link #close()}. */
  public synchronized List<String> leftovers() {
    return leftovers;
  }

  private String tail(long offset) throws IOException {
    byte[] all = Files.readAllBytes(log);
    return new String(all, (int) Math.min(offset, all.length), (int) Math.max(0, all.length - offset),
        StandardCharsets.UTF_8);
  }

  /**
   * Distinct free TCP ports: all sockets are held open until every port is
   * chosen, so two calls cannot hand out the same port (one at a time, the
   * OS may return a port it just gave out). The ports lie below the kernel's
   * ephemeral range ({@code net.ipv4.ip_local_port_range}): a port from that
   * range, free when chosen, can be taken by any outgoing connection (a JDBC
   * connection of the very service about to bind it) before the service binds
   * it — seen as "Port already bound" in CI.
   */
  public static int[] freePorts(int n) throws IOException {
    ServerSocket[] sockets = new ServerSocket[n];
    int low = ephemeralLow();
    java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        for (int attempt = 0; sockets[i] == null; attempt++) {
          if (attempt >= 200 || low <= 12_000) {
            sockets[i] = new ServerSocket(0);
            break;
          }
          try {
            ServerSocket candidate = new ServerSocket();
            candidate.setReuseAddress(false);
            try {
              candidate.bind(new java.net.InetSocketAddress(random.nextInt(10_000, low)));
              sockets[i] = candidate;
            } catch (IOException taken) {
              candidate.close();
            }
          } catch (IOException e) {
            // try another
          }
        }
        ports[i] = sockets[i].getLocalPort();
      }
      return ports;
    } finally {
      for (ServerSocket s : sockets) {
        if (s != null) s.close();
      }
    }
  }

  /** The first port of the kernel's ephemeral range; 32768 (Linux's default) when it cannot be read. */
  static int ephemeralLow() {
    try {
      // a reader, not Files.readString: on some kernels a whole-file read of this /proc file returns its
      // first byte only ("3"), which made every port come from the ephemeral range after all
      String range;
      try (java.io.BufferedReader r = Files.newBufferedReader(Path.of("/proc/sys/net/ipv4/ip_local_port_range"))) {
        range = String.valueOf(r.readLine()).trim();
      }
      return Integer.parseInt(range.split("\\s+")[0]);
    } catch (IOException | RuntimeException e) {
      return 32_768;
    }
  }

  /**
   * Stops the service (SIGTERM, SIGKILL after 20 s). For an isolated service also kills what it
   * left behind and deletes its temporary directory. Safe to call more than once and from the
   * shutdown hook.
   */
  @Override
  public synchronized void close() {
    if (closed) return;
    closed = true;
    if (hook != null && Thread.currentThread() != hook) {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running or about to; nothing to undo
      }
    }
    if (process == null) {
      if (workDir != null) deleteRecursively(workDir);
      return;
    }
    if (workDir == null) {
      if (!process.isAlive()) return;
      process.destroy();
      if (!waitFor(process.toHandle(), Duration.ofSeconds(20))) {
        process.destroyForcibly();
        waitFor(process.toHandle(), Duration.ofSeconds(30));
      }
      return;
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
      System.err.println("tpmkms: killed processes left behind by the " + name + ": " + found);
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

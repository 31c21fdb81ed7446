package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.tpmkms.devtools.ServiceProcess;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The repository's {@code ./run} as a user starts it, on ports and a data directory of the test's own:
 * its terminal output, its pid files, and every process that belongs to it — found by the data directory
 * in its command line or environment, so a grandchild (Keycloak's JVM, an embedded PostgreSQL) counts too.
 */
final class RunScript implements AutoCloseable {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static final Duration START_TIMEOUT = Duration.ofSeconds(420);

  final Path dataDir;
  final Map<String, Integer> ports = new LinkedHashMap<>();
  private final Process process;
  private final StringBuffer output = new StringBuffer();
  private final Thread reader;

  private RunScript(Path dataDir, Map<String, Integer> ports, Process process) {
    this.dataDir = dataDir;
    this.ports.putAll(ports);
    this.process = process;
    this.reader = new Thread(this::pump, "run-output");
    reader.setDaemon(true);
    reader.start();
  }

  /** The ports of one data directory, chosen once: every start on that directory uses the same ones. */
  static Map<String, Integer> choosePorts() throws IOException {
    String[] vars = {"TPMKMS_KEYCLOAK_PORT", "TPMKMS_KEYCLOAK_MANAGEMENT_PORT", "TPMKMS_AUDIT_GRPC_PORT",
        "TPMKMS_AUDIT_HTTP_PORT", "TPMKMS_POLICY_GRPC_PORT", "TPMKMS_POLICY_HTTP_PORT", "TPMKMS_GRPC_PORT",
        "TPMKMS_HTTP_PORT"};
    int[] free = ServiceProcess.freePorts(vars.length);
    Map<String, Integer> ports = new LinkedHashMap<>();
    for (int i = 0; i < vars.length; i++) ports.put(vars[i], free[i]);
    return ports;
  }

  /**
   * Starts {@code ./run args}. Through perl, which resets SIGINT and SIGHUP to their defaults before it
   * execs the script: a shell cannot trap a signal that was ignored when it started, and a build run in
   * the background starts its children with SIGINT ignored; a user's terminal does not.
   */
  static RunScript start(Path dataDir, Map<String, Integer> ports, String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("perl", "-e",
        "$SIG{INT} = $SIG{HUP} = $SIG{TERM} = 'DEFAULT'; exec @ARGV or die \"exec: $!\"", "./run"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(ROOT.toFile()).redirectErrorStream(true);
    Map<String, String> env = pb.environment();
    env.put("TPMKMS_DATA_DIR", dataDir.toString());
    env.put("TPMKMS_RUN_BUILD", "never");
    ports.forEach((k, v) -> env.put(k, Integer.toString(v)));
    Files.createDirectories(dataDir);
    return new RunScript(dataDir, ports, pb.start());
  }

  private void pump() {
    try (InputStream in = process.getInputStream()) {
      byte[] buf = new byte[8192];
      int n;
      while ((n = in.read(buf)) > 0) output.append(new String(buf, 0, n, StandardCharsets.UTF_8));
    } catch (IOException e) {
      output.append("\n[reading the output failed: ").append(e).append("]\n");
    }
  }

  long pid() { return process.pid(); }

  String output() { return output.toString(); }

  /** Until the banner (everything answered its health check); fails with the output when ./run exits first. */
  RunScript awaitReady() throws InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (output.indexOf("tpmkms is running") >= 0 && output.indexOf("stops everything") >= 0) return this;
      if (!process.isAlive()) {
        Thread.sleep(200);
        fail("./run exited with " + process.exitValue() + " before it was ready:\n" + output + logs());
      }
      Thread.sleep(250);
    }
    fail("./run not ready in " + START_TIMEOUT + ":\n" + output + logs());
    return this;
  }

  /** The last lines of every service log, for a failure message. */
  String logs() {
    StringBuilder b = new StringBuilder();
    try (Stream<Path> files = Files.list(dataDir)) {
      for (Path log : files.filter(p -> p.toString().endsWith(".log")).sorted().toList()) {
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        b.append("\n--- ").append(log.getFileName()).append(" (last 30 lines)\n");
        lines.subList(Math.max(0, lines.size() - 30), lines.size()).forEach(l -> b.append(l).append('\n'));
      }
    } catch (IOException | RuntimeException e) {
      b.append("\n[logs unreadable: ").append(e).append("]");
    }
    return b.toString();
  }

  /** The pid ./run recorded for a service ({@code key-service}, {@code keycloak}, ...). */
  long servicePid(String name) throws IOException {
    return Long.parseLong(Files.readString(dataDir.resolve("run").resolve(name + ".pid")).trim());
  }

  void signal(String signal) throws IOException, InterruptedException {
    signal(signal, process.pid());
  }

  static void signal(String signal, long pid) throws IOException, InterruptedException {
    Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start();
    assertEquals(0, kill.waitFor(), "kill -" + signal + " " + pid);
  }

  /** ./run's exit status, waiting up to {@code timeout}. */
  int awaitExit(Duration timeout) throws InterruptedException {
    assertTrue(process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS),
        "./run still running after " + timeout + ":\n" + output);
    reader.join(5_000);
    return process.exitValue();
  }

  /**
   * Every live process that belongs to this data directory (its path in the command line or the
   * environment), as "pid command".
   */
  List<String> processesOfDataDir() {
    return processesMentioning(dataDir.toString());
  }

  static List<String> processesMentioning(String text) {
    List<String> found = new ArrayList<>();
    long self = ProcessHandle.current().pid();
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      for (Path p : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
        if (Long.parseLong(p.getFileName().toString()) == self) continue;
        try {
          String cmdline = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8)
              .replace('\0', ' ');
          String environ = new String(Files.readAllBytes(p.resolve("environ")), StandardCharsets.UTF_8);
          if (cmdline.contains(text) || environ.contains(text)) {
            found.add(p.getFileName() + " " + cmdline.strip());
          }
        } catch (IOException e) {
          // gone meanwhile, or not ours to read
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return found;
  }

  /** The ports that something still listens on. */
  List<String> portsInUse() {
    List<String> used = new ArrayList<>();
    for (Map.Entry<String, Integer> e : ports.entrySet()) {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", e.getValue()), 500);
        used.add(e.getKey() + "=" + e.getValue());
      } catch (IOException refused) {
        // free
      }
    }
    return used;
  }

  /** Nothing of this run is left: no process, no listening port, no pid file. */
  void assertNothingLeft() throws InterruptedException, IOException {
    List<String> procs = List.of();
    List<String> used = List.of();
    for (int i = 0; i < 20; i++) {   // a process that got SIGKILL may take a moment to be reaped
      procs = processesOfDataDir();
      used = portsInUse();
      if (procs.isEmpty() && used.isEmpty()) break;
      Thread.sleep(250);
    }
    assertEquals(List.of(), procs, "processes of " + dataDir + " left running; ./run said:\n" + output);
    assertEquals(List.of(), used, "ports still in use; ./run said:\n" + output);
    try (Stream<Path> pidFiles = Files.list(dataDir.resolve("run"))) {
      assertEquals(List.of(), pidFiles.map(p -> p.getFileName().toString()).toList(), "pid files left");
    }
  }

  @Override
  public void close() throws Exception {
    if (process.isAlive()) {
      signal("TERM");
      if (!process.waitFor(60, TimeUnit.SECONDS)) process.destroyForcibly();
    }
    // whatever a failed test left behind must not outlive it
    for (String p : processesOfDataDir()) {
      new ProcessBuilder("kill", "-9", p.substring(0, p.indexOf(' '))).start().waitFor();
    }
  }
}

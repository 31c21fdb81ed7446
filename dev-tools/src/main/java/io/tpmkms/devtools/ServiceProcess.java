package io.tpmkms.support;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A packaged tpmkms service (a Quarkus fast-jar) run as a child process, for
 * tests that need real processes: start, wait until ready, kill -9, restart
 * with the same settings. Output goes to a log file (appended across restarts).
 * Not thread-safe.
 */
public final class ServiceProcess implements AutoCloseable {
  private final Path jar;
  private final Map<String, String> env;
  private final Path log;
  private Process process;

  private ServiceProcess(Path jar, Map<String, String> env, Path log) {
    this.jar = jar;
    this.env = new LinkedHashMap<>(env);
    this.log = log;
  }

  /** Starts the jar with these environment variables and waits until it is ready. */
  public static ServiceProcess start(Path jar, Map<String, String> env, Path log) throws Exception {
    if (!Files.exists(jar)) throw new IllegalStateException("not built: " + jar);
    ServiceProcess p = new ServiceProcess(jar, env, log);
    p.startProcess();
    return p;
  }

  private void startProcess() throws Exception {
    long offset = Files.exists(log) ? Files.size(log) : 0;
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", jar.toAbsolutePath().toString())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    pb.environment().putAll(env);
    process = pb.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (System.nanoTime() < deadline) {
      String out = Files.exists(log) ? tail(offset) : "";
      if (out.contains("Installed features")) return;
      if (!process.isAlive() || out.contains("Failed to start")) {
        throw new IllegalStateException(jar.getFileName() + " failed to start:\n" + out);
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(jar.getFileName() + " did not start in time:\n" + tail(offset));
  }

  /** SIGKILL: no shutdown hooks, nothing flushed. */
  public void kill9() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** Starts it again with the same settings. */
  public void restart() throws Exception {
    if (process.isAlive()) kill9();
    startProcess();
  }

  public Path log() { return log; }

  /** How often a line of the log contains the text. */
  public long countInLog(String text) throws IOException {
    return Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> l.contains(text)).count();
  }

  private String tail(long offset) throws IOException {
    byte[] all = Files.readAllBytes(log);
    return new String(all, (int) Math.min(offset, all.length), (int) Math.max(0, all.length - offset),
        StandardCharsets.UTF_8);
  }

  /**
   * Distinct free TCP ports: all sockets are held open until every port is
   * chosen, so two calls cannot hand out the same port (one at a time, the
   * OS may return a port it just gave out).
   */
  public static int[] freePorts(int n) throws IOException {
    ServerSocket[] sockets = new ServerSocket[n];
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        sockets[i] = new ServerSocket(0);
        ports[i] = sockets[i].getLocalPort();
      }
      return ports;
    } finally {
      for (ServerSocket s : sockets) {
        if (s != null) s.close();
      }
    }
  }

  @Override
  public void close() throws InterruptedException {
    if (process == null || !process.isAlive()) return;
    process.destroy();
    if (!process.waitFor(20, TimeUnit.SECONDS)) kill9();
  }
}

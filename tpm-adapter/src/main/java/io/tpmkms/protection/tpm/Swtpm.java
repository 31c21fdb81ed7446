package io.tpmkms.protection.tpm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A swtpm (the TPM 2.0 emulator) on a UNIX socket, for tests, benchmarks and
 * local runs — never a production TPM: its secrets are files in its state
 * directory. Installs swtpm/tpm2-tools with apt-get when missing and running
 * as root; otherwise fails with a clear message.
 */
public final class Swtpm implements AutoCloseable {
  public final Path dir;
  public final Path stateDir;
  private Process daemonStarter;

  private Swtpm(Path dir) throws IOException {
    this.dir = dir;
    this.stateDir = dir.resolve("state");
    Files.createDirectories(stateDir);
  }

  public static Swtpm start() throws Exception {
    ensureInstalled();
    Swtpm s = new Swtpm(Files.createTempDirectory("tpmkms-swtpm-"));
    s.startProcess();
    return s;
  }

  /**
   * A swtpm whose state was made by swtpm_setup with an RSA-2048 EK and an EK
   * certificate from swtpm_localca (offline, about 4 s).
   */
  public static Swtpm startWithEkCertificate() throws Exception {
    ensureInstalled();
    Swtpm s = new Swtpm(Files.createTempDirectory("tpmkms-swtpm-ek-"));
    Path ca = Files.createDirectories(s.dir.resolve("ca"));
    Path localca = s.dir.resolve("swtpm-localca.conf");
    Files.writeString(localca, "statedir = " + ca + "\nsigningkey = " + ca.resolve("signkey.pem")
        + "\nissuercert = " + ca.resolve("issuercert.pem") + "\ncertserial = " + ca.resolve("certserial") + "\n");
    Path options = s.dir.resolve("swtpm-localca.options");
    Files.writeString(options, "");
    Path setup = s.dir.resolve("swtpm_setup.conf");
    Files.writeString(setup, "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = " + localca
        + "\ncreate_certs_tool_options = " + options + "\n");
    run(List.of("swtpm_setup", "--tpm2", "--tpmstate", s.stateDir.toString(), "--create-ek-cert",
        "--lock-nvram", "--config", setup.toString()), 120);
    s.startProcess();
    return s;
  }

  public Path socket() { return dir.resolve("tpm.sock"); }

  public String tcti() { return "swtpm:path=" + socket(); }

  public TpmConfig config() { return TpmConfig.unixSocket(socket().toString()); }

  public void startProcess() throws Exception {
    Files.deleteIfExists(socket());
    Files.deleteIfExists(dir.resolve("tpm.sock.ctrl"));
    run(List.of("swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + stateDir,
        "--server", "type=unixio,path=" + socket(), "--ctrl", "type=unixio,path=" + dir.resolve("tpm.sock.ctrl"),
        "--flags", "not-need-init,startup-clear", "--pid", "file=" + dir.resolve("pid"), "--daemon"), 10);
    for (int i = 0; i < 200 && !Files.exists(socket()); i++) Thread.sleep(10);
  }

  public long pid() throws IOException {
    return Long.parseLong(Files.readString(dir.resolve("pid")).trim());
  }

  /** kill -9: no shutdown, the state dir stays as it was. */
  public void kill() throws Exception {
    long pid = pid();
    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
    for (int i = 0; i < 200 && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false); i++) Thread.sleep(10);
  }

  public void restart() throws Exception {
    kill();
    startProcess();
  }

  /** Runs a command, returns stdout; fails on a non-zero exit. */
  public static String run(List<String> cmd, int timeoutSeconds) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("timed out: " + cmd);
    }
    String s = new String(out, StandardCharsets.UTF_8);
    if (p.exitValue() != 0) throw new IllegalStateException("exit " + p.exitValue() + ": " + cmd + "\n" + s);
    return s;
  }

  /** Runs a command, returns its exit code and output ("exit N\n" + output) whatever the exit code. */
  public static String runAllowingFailure(List<String> cmd, int timeoutSeconds) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("timed out: " + cmd);
    }
    return "exit " + p.exitValue() + "\n" + new String(out, StandardCharsets.UTF_8);
  }

  private static boolean onPath(String exe) {
    for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (Files.isExecutable(Path.of(d, exe))) return true;
    }
    return false;
  }

  public static synchronized void ensureInstalled() throws Exception {
    if (onPath("swtpm") && onPath("tpm2_createprimary")) return;
    boolean root = "root".equals(System.getProperty("user.name"));
    if (!root) {
      throw new IllegalStateException("swtpm and tpm2-tools are required for the TPM tests: "
          + "apt-get install -y swtpm swtpm-tools tpm2-tools (as root)");
    }
    run(List.of("apt-get", "update", "-qq"), 600);
    run(List.of("apt-get", "install", "-y", "-qq", "swtpm", "swtpm-tools", "tpm2-tools"), 600);
  }

  @Override
  public void close() throws Exception {
    try {
      kill();
    } catch (IOException ignored) {
      // never started
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
    }
  }

  public static List<String> args(String... a) { return new ArrayList<>(List.of(a)); }
}

package io.tpmkms.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.protection.tpm.Swtpm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Map;

/**
 * A real (emulated) TPM for the app under test: a fresh swtpm on a UNIX socket and a fresh data
 * directory.
 *
 * <p>Init argument {@code ek-certificate=true}: the swtpm gets an EK certificate (attestation).
 * {@code software-seed=true}: the data directory starts with a plain software root seed, as left
 * by an earlier run without a TPM; the service must seal it (migration), and the test knows it
 * ({@link #seed()}), so it can derive key auth values for tpm2-tools.
 */
public class SwtpmResource implements QuarkusTestResourceLifecycleManager {
  private static volatile Swtpm current;
  private static final byte[] seed = new byte[32];
  private boolean ekCertificate;
  private boolean softwareSeed;

  /** The software root seed the app was started with (software-seed=true). */
  public static byte[] seed() { return seed.clone(); }

  /** The swtpm of the running test app, for tests that kill and restart it. */
  public static Swtpm current() { return current; }

  @Override
  public void init(Map<String, String> initArgs) {
    ekCertificate = Boolean.parseBoolean(initArgs.getOrDefault("ek-certificate", "false"));
    softwareSeed = Boolean.parseBoolean(initArgs.getOrDefault("software-seed", "false"));
  }

  @Override
  public Map<String, String> start() {
    try {
      current = ekCertificate ? Swtpm.startWithEkCertificate() : Swtpm.start();
      Path dataDir = Files.createTempDirectory("tpmkms-tpm-test-");
      if (softwareSeed) {
        new SecureRandom().nextBytes(seed);
        Path seedFile = dataDir.resolve("software-root.key");
        Files.write(seedFile, seed);
        Files.setPosixFilePermissions(seedFile, PosixFilePermissions.fromString("rw-------"));
      }
      return Map.of(
          "tpmkms.backend.tpm.transport", "unix",
          "tpmkms.backend.tpm.path", current.socket().toString(),
          "tpmkms.backend.tpm.command-timeout", "10S",
          "tpmkms.data-dir", dataDir.toString());
    } catch (Exception e) {
      throw new IllegalStateException("cannot start swtpm", e);
    }
  }

  @Override
  public void stop() {
    try {
      if (current != null) current.close();
    } catch (Exception ignored) {
      // the temp dir goes with the machine
    }
  }
}

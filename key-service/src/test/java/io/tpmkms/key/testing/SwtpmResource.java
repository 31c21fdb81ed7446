package io.tpmkms.key.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.protection.tpm.Swtpm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Map;

/**
 * A real (emulated) TPM for the key service under test: a fresh swtpm with an
 * EK certificate, on a UNIX socket, and a fresh data directory so the software
 * root seed is sealed by this TPM.
 */
public class SwtpmResource implements QuarkusTestResourceLifecycleManager {
  private static volatile Swtpm current;
  private static final byte[] seed = new byte[32];

  /** The software root seed the service was started with (sealed by it into the TPM). */
  public static byte[] seed() { return seed.clone(); }

  /** The swtpm of the running test app, for tests that kill and restart it. */
  public static Swtpm current() { return current; }

  @Override
  public Map<String, String> start() {
    try {
      current = Swtpm.startWithEkCertificate();
      Path dataDir = Files.createTempDirectory("tpmkms-tpm-test-");
      // A plain seed from "an earlier run without a TPM": the service must seal it (migration),
      // and the test knows it, so it can derive key auth values for tpm2-tools.
      new SecureRandom().nextBytes(seed);
      Path seedFile = dataDir.resolve("software-root.key");
      Files.write(seedFile, seed);
      Files.setPosixFilePermissions(seedFile, PosixFilePermissions.fromString("rw-------"));
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

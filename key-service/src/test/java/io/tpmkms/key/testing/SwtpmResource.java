package io.tpmkms.key.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.protection.tpm.Swtpm;
import java.nio.file.Files;
import java.util.Map;

/**
 * A real (emulated) TPM for the key service under test: a fresh swtpm with an
 * EK certificate, on a UNIX socket, and a fresh data directory so the software
 * root seed is sealed by this TPM.
 */
public class SwtpmResource implements QuarkusTestResourceLifecycleManager {
  private static volatile Swtpm current;

  /** The swtpm of the running test app, for tests that kill and restart it. */
  public static Swtpm current() { return current; }

  @Override
  public Map<String, String> start() {
    try {
      current = Swtpm.startWithEkCertificate();
      return Map.of(
          "tpmkms.backend.tpm.transport", "unix",
          "tpmkms.backend.tpm.path", current.socket().toString(),
          "tpmkms.backend.tpm.command-timeout", "10S",
          "tpmkms.data-dir", Files.createTempDirectory("tpmkms-tpm-test-").toString());
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

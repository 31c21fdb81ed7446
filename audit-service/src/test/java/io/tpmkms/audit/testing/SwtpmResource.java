package io.tpmkms.audit.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.protection.tpm.Swtpm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** The audit service's own TPM under test: a fresh swtpm on a UNIX socket and a fresh data directory. */
public class SwtpmResource implements QuarkusTestResourceLifecycleManager {
  private static volatile Swtpm current;

  public static Swtpm current() { return current; }

  @Override
  public Map<String, String> start() {
    try {
      current = Swtpm.start();
      Path dataDir = Files.createTempDirectory("tpmkms-audit-tpm-test-");
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

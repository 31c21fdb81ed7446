package io.tpmkms.platform.tpm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** Reads the sealed root seed's policy settings (ADR 0034) for the key and audit services. */
final class RootSealSettings {
  private RootSealSettings() {}

  /** The sealed root seed's policy from the settings (ADR 0034; docs/operations.md, "The sealed root seed"). */
  static io.tpmkms.protection.tpm.RootSeal of(Optional<String> pcrSetting, Optional<String> secretFile,
      Optional<String> newSecretFile, Path dataDir) {
    String pcrs = pcrSetting.orElse("7").trim();
    int[] selection;
    if (pcrs.isEmpty() || pcrs.equalsIgnoreCase("none")) {
      selection = new int[0];
    } else {
      try {
        selection = java.util.Arrays.stream(pcrs.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
        selection = io.tpmkms.protection.tpm.RootSeal.pcrs(selection).pcrs();
      } catch (IllegalArgumentException e) {
        throw new IllegalStateException("tpmkms.backend.tpm.root-seal-pcrs must be \"none\" or 1 to 8 PCR numbers "
            + "0..23 separated by commas, not \"" + pcrs + "\" (" + e.getMessage() + ")");
      }
    }
    byte[] secret = secretFile.map(f -> secret(f, dataDir, "root-secret-file")).orElse(null);
    byte[] newSecret = newSecretFile.map(f -> secret(f, dataDir, "root-new-secret-file")).orElse(null);
    if (newSecret != null && secret == null) {
      throw new IllegalStateException("tpmkms.backend.tpm.root-new-secret-file re-seals with a new operator secret: "
          + "tpmkms.backend.tpm.root-secret-file must name the current one");
    }
    return new io.tpmkms.protection.tpm.RootSeal(selection, secret, newSecret);
  }

  /**
   * An operator secret's bytes (one trailing newline dropped): from a file that is not in the data dir,
   * since the point of the secret is that a copy of the data dir does not have it.
   */
  static byte[] secret(String file, Path dataDir, String setting) {
    Path p = Path.of(file).toAbsolutePath().normalize();
    if (p.startsWith(dataDir.toAbsolutePath().normalize())) {
      throw new IllegalStateException("tpmkms.backend.tpm." + setting + " (" + p + ") is inside the data dir "
          + dataDir + ": keep the operator secret elsewhere (a mounted Secret, a systemd credential), or a copy of the "
          + "data dir carries it");
    }
    byte[] b;
    try {
      b = Files.readAllBytes(p);
    } catch (java.io.IOException e) {
      throw new IllegalStateException("cannot read tpmkms.backend.tpm." + setting + " " + p + ": " + e.getMessage());
    }
    int n = b.length;
    if (n > 0 && b[n - 1] == '\n') n--;
    if (n > 0 && b[n - 1] == '\r') n--;
    if (n == 0) throw new IllegalStateException("tpmkms.backend.tpm." + setting + " " + p + " is empty");
    byte[] out = java.util.Arrays.copyOf(b, n);
    java.util.Arrays.fill(b, (byte) 0);
    return out;
  }

}

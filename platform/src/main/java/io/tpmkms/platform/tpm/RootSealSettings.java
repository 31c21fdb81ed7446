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
    Path p = outsideDataDir(file, dataDir, setting);
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

  /** The recovery key's public half: a PEM (or DER) SubjectPublicKeyInfo of an EC P-256 key. */
  static java.security.PublicKey recoveryPublicKey(String file) {
    try {
      byte[] der = der(Files.readAllBytes(Path.of(file)), "PUBLIC KEY");
      java.security.PublicKey key = io.tpmkms.protection.tpm.RootRecovery.publicKey(der);
      io.tpmkms.protection.tpm.RootRecovery.publicArea(key); // P-256 only
      return key;
    } catch (java.io.IOException | IllegalArgumentException e) {
      throw new IllegalStateException("tpmkms.backend.tpm.root-recovery-public-key-file " + file + ": " + e.getMessage()
          + " (make one with: openssl ec -in recovery.pem -pubout -out recovery.pub.pem)");
    }
  }

  /** The recovery key's private half: PEM PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"), outside the data dir. */
  static java.security.PrivateKey recoveryPrivateKey(String file, Path dataDir) {
    Path p = outsideDataDir(file, dataDir, "root-recovery-key-file");
    try {
      String pem = Files.readString(p, java.nio.charset.StandardCharsets.US_ASCII);
      Object parsed = new org.bouncycastle.openssl.PEMParser(new java.io.StringReader(pem)).readObject();
      var converter = new org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter();
      if (parsed instanceof org.bouncycastle.openssl.PEMKeyPair pair) return converter.getKeyPair(pair).getPrivate();
      if (parsed instanceof org.bouncycastle.asn1.pkcs.PrivateKeyInfo info) return converter.getPrivateKey(info);
      throw new IllegalArgumentException("not an unencrypted EC private key in PEM");
    } catch (java.io.IOException | RuntimeException e) {
      throw new IllegalStateException("tpmkms.backend.tpm.root-recovery-key-file " + p + ": " + e.getMessage());
    }
  }

  private static byte[] der(byte[] file, String label) {
    String text = new String(file, java.nio.charset.StandardCharsets.US_ASCII);
    if (!text.contains("-----BEGIN " + label + "-----")) return file;
    String body = text.substring(text.indexOf("-----BEGIN " + label + "-----") + ("-----BEGIN " + label + "-----").length(),
        text.indexOf("-----END " + label + "-----"));
    return java.util.Base64.getMimeDecoder().decode(body);
  }

  /**
   * The file's real path (symlinks resolved), refused when it lies in the data dir: a secret there would be
   * in every copy of the data dir.
   */
  static Path outsideDataDir(String file, Path dataDir, String setting) {
    Path p = real(Path.of(file));
    if (p.startsWith(real(dataDir))) {
      throw new IllegalStateException("tpmkms.backend.tpm." + setting + " (" + p + ") is inside the data dir "
          + dataDir + ": keep the operator secret elsewhere (a mounted Secret, a systemd credential), or a copy of the "
          + "data dir carries it");
    }
    return p;
  }

  /** toRealPath when the path exists (symlinks and .. resolved), else the absolute normalized path. */
  private static Path real(Path p) {
    try {
      return p.toRealPath();
    } catch (java.io.IOException e) {
      return p.toAbsolutePath().normalize();
    }
  }

}

package io.tpmkms.key.lifecycle;

import io.tpmkms.key.error.KmsException;
import io.tpmkms.key.error.Reasons;

/**
 * The cryptographic uses of a version and the states that allow them. Uses
 * that protect new data (encrypt, sign, MAC) need ENABLED; uses that read old
 * data (decrypt, verify) also accept COMPROMISED, so revocation never strands
 * data.
 */
public enum KeyUse {
  ENCRYPT(true), DECRYPT(false), SIGN(true), VERIFY(false), ASYMMETRIC_DECRYPT(false),
  PUBLIC_KEY(false), MAC_SIGN(true), MAC_VERIFY(false);

  private final boolean protectsNewData;

  KeyUse(boolean protectsNewData) { this.protectsNewData = protectsNewData; }

  /** @throws KmsException FAILED_PRECONDITION naming the state when the version cannot be used so */
  public void check(String key, int version, KeyVersionState state) {
    switch (state) {
      case ENABLED -> { return; }
      case COMPROMISED -> {
        if (!protectsNewData) return;
        throw fail(Reasons.KEY_VERSION_COMPROMISED, key, version,
            "is revoked (COMPROMISED) and can no longer " + verb());
      }
      case DESTROYED -> throw fail(Reasons.KEY_VERSION_DESTROYED, key, version, "is destroyed");
      default -> throw fail(Reasons.KEY_VERSION_NOT_ENABLED, key, version, "is " + state + ", not ENABLED");
    }
  }

  private String verb() { return name().toLowerCase().replace('_', ' '); }

  private static KmsException fail(String reason, String key, int version, String what) {
    return KmsException.failedPrecondition(reason, "version " + version + " of key \"" + key + "\" " + what)
        .with("key", key).with("version", Integer.toString(version));
  }
}

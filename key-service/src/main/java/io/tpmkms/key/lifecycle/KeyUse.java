package io.tpmkms.key.lifecycle;

import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;

/**
 * The cryptographic uses of a version and the states that allow them. Uses
 * that protect new data (encrypt, sign, MAC) need ENABLED; uses that read old
 * data (decrypt, verify) also accept COMPROMISED, so revocation never strands
 * data.
 */
public enum KeyUse {
  ENCRYPT(true), DECRYPT(false), SIGN(true), VERIFY(false), ASYMMETRIC_DECRYPT(false),
  PUBLIC_KEY(false), MAC_SIGN(true), MAC_VERIFY(false),
  /** ExportKeyVersion: like a use that protects new data, ENABLED only. */
  EXPORT(true);

  private final boolean protectsNewData;

  KeyUse(boolean protectsNewData) { this.protectsNewData = protectsNewData; }

  /** @throws ServiceException FAILED_PRECONDITION naming the state when the version cannot be used so */
  public void check(String key, int version, KeyVersionState state) {
    switch (state) {
      case ENABLED -> { return; }
      case COMPROMISED -> {
        if (!protectsNewData) return;
        throw fail(KeyReason.KEY_VERSION_COMPROMISED, key, version,
            "is revoked (COMPROMISED) and can no longer " + verb());
      }
      case DESTROYED -> throw fail(KeyReason.KEY_VERSION_DESTROYED, key, version, "is destroyed");
      default -> throw fail(KeyReason.KEY_VERSION_NOT_ENABLED, key, version, "is " + state + ", not ENABLED");
    }
  }

  private String verb() { return name().toLowerCase().replace('_', ' '); }

  private static ServiceException fail(KeyReason reason, String key, int version, String what) {
    return ServiceException.failedPrecondition(reason, "version " + version + " of key \"" + key + "\" " + what)
        .with("key", key).with("version", Integer.toString(version));
  }
}

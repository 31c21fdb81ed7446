package io.tpmkms.protection.software;

/**
 * Where the software backend's root seed comes from. The seed is the only
 * secret the software backend has: the key-encryption key and the root id are
 * derived from it, so losing it loses every software key, and disclosing it
 * discloses every software key whose blob the attacker also has.
 *
 * <p>Implementations: {@link FileRootKeySource} (a 0600 file); a TPM-sealed
 * source comes with the TPM adapter.
 *
 * <p>Errors: throws {@link io.tpmkms.protection.BackendException} only —
 * KEY_INVALID when the seed exists but cannot be trusted or used, INTERNAL for
 * I/O failures.
 */
public interface RootKeySource {

  /** Length in bytes of every root seed. */
  int SEED_LENGTH = 32;

  /** A fresh copy of the {@value #SEED_LENGTH}-byte seed; the caller may zero it after use. */
  byte[] rootSeed();
}

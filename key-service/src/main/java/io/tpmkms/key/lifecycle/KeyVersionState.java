package io.tpmkms.key.lifecycle;

/** The states of a key version (NIST SP 800-57 / KMIP informed); see docs/key-lifecycle.md. */
public enum KeyVersionState {
  PENDING_IMPORT, ENABLED, DISABLED, DESTROY_SCHEDULED, DESTROYED, COMPROMISED
}

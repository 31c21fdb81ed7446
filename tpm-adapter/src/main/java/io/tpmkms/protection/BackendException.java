package io.tpmkms.protection;

/**
 * The one failure type a backend throws. {@link Kind} says what the caller can
 * do about it; key-service maps each kind to one gRPC status. Messages never
 * contain key material or plaintext; crypto failures stay vague ("decryption
 * failed") and the cause is kept for the log.
 */
public final class BackendException extends RuntimeException {

  public enum Kind {
    /** The caller's input is wrong: bad ciphertext, failed tag check, wrong digest length. */
    INVALID_INPUT,
    /** The stored blob cannot be used: corrupt, unknown format, or wrapped under another root. */
    KEY_INVALID,
    /** The backend lacks the capability or algorithm. */
    UNSUPPORTED,
    /** The device is unreachable or asks for a retry. */
    UNAVAILABLE,
    /**
     * The TPM refuses the key because the platform state is not the one the key is bound to
     * (TPM2_PolicyPCR failed: a PCR differs from its bound value). Nothing the caller sends can fix it.
     */
    PLATFORM_STATE_MISMATCH,
    /** Out of object memory, rate limited. */
    RESOURCE_EXHAUSTED,
    /** Anything else. */
    INTERNAL
  }

  private final Kind kind;

  public BackendException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public BackendException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() { return kind; }
}

package io.tpmkms.protection.tpm;

/**
 * What the TPM adapter tells a metrics system (issue 18), without depending on one: every TPM
 * command with its latency and outcome, object loads and evictions of the key cache, connects.
 * One observer for the process ({@link #install}); the default does nothing. Called on the thread
 * that holds the TPM connection's lock, so an implementation must be quick and must not block.
 * Command names are the adapter's fixed names (TPM 2.0 command names), never a key name.
 */
public interface TpmObserver {
  /** How a TPM command ended. */
  enum Outcome {
    /** TPM_RC_SUCCESS. */
    OK,
    /** TPM_RC_RETRY, YIELDED, TESTING: the connection retries. */
    RETRY,
    /** TPM_RC_OBJECT_MEMORY, MEMORY, OBJECT_HANDLES: the key cache is flushed and the command retried. */
    MEMORY,
    /** The TPM refused an authorization: BAD_AUTH, AUTH_FAIL, POLICY_FAIL, INTEGRITY... */
    AUTH,
    /** Any other TPM response code. */
    TPM_ERROR,
    /** The TPM could not be reached, or its answer was cut off. */
    IO_ERROR
  }

  default void command(String command, long nanos, Outcome outcome) {}

  /** A key object was loaded into the TPM (a miss of the key cache). */
  default void objectLoaded() {}

  /** A key object was flushed to make room (the least recently used). */
  default void objectEvicted() {}

  /** A connection to the TPM was made; {@code reconnect} when it replaces a lost one. */
  default void connected(boolean reconnect) {}

  TpmObserver NONE = new TpmObserver() {};

  /** The process's observer. */
  static TpmObserver current() {
    return Holder.observer;
  }

  /** Installs the process's observer ({@code null}: none). */
  static void install(TpmObserver observer) {
    Holder.observer = observer == null ? NONE : observer;
  }

  /** Where the observer lives. */
  final class Holder {
    private static volatile TpmObserver observer = NONE;

    private Holder() {}
  }
}

package io.tpmkms.protection.tpm;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.tpm.internal.ResponseCodes;
import io.tpmkms.protection.tpm.internal.TpmIoException;
import io.tpmkms.protection.tpm.internal.TpmRcException;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.jboss.logging.Logger;

/**
 * The one serialized command queue to one TPM: every TPM command of the
 * backend and of the sealed root source runs under this connection's single
 * lock, on one connection (swtpm serves one connection at a time and holds
 * three transient objects, a real TPM is no faster in parallel).
 *
 * <p>Failure handling, in order, for each operation:
 * <ul>
 *   <li>TPM_RC_RETRY / YIELDED / TESTING / NV_RATE: retried up to 3 times with a short pause.
 *   <li>TPM_RC_OBJECT_MEMORY (and MEMORY, OBJECT_HANDLES): all cached objects are flushed and the
 *       operation is retried once.
 *   <li>I/O failure or timeout: the connection is closed and the operation fails UNAVAILABLE,
 *       except that a connection which broke while idle (the first command of the operation fails
 *       on an old connection) is reopened and the operation retried once. The next operation
 *       reconnects; after a reconnect every transient object is treated as gone (the TPM may have
 *       restarted): leftovers are flushed, the SRK re-derived, the cache starts empty.
 *   <li>Any other response code: {@link ResponseCodes#classify}.
 * </ul>
 *
 * <p>Threading: safe for concurrent use; operations run one at a time. Closing
 * flushes the cached objects and releases the connection; later operations
 * fail UNAVAILABLE.
 */
public final class TpmConnection implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(TpmConnection.class);
  private static final int BUSY_RETRIES = 3;

  private final ReentrantLock lock = new ReentrantLock();
  private final TpmSession session;
  private volatile boolean closed;

  private TpmConnection(TpmConfig config) {
    this.session = new TpmSession(config);
  }

  /**
   * Connects, flushes leftover transient objects and derives the SRK.
   *
   * @throws BackendException UNAVAILABLE if the TPM cannot be reached; INTERNAL if the SRK cannot be made
   */
  public static TpmConnection open(TpmConfig config) {
    TpmConnection c = new TpmConnection(config);
    c.execute(s -> null);
    LOG.infof("TPM connection open: %s", config);
    return c;
  }

  public TpmConfig config() { return session.config(); }

  /** Why the last operation could not reach the TPM; null once one succeeds again. */
  private volatile String unreachable;

  /**
   * For readiness (issue 18): empty when the TPM answers, else why not. Connected: one TPM2_ReadPublic
   * of the SRK. Not connected: fine if nothing failed (the connection was released on purpose, e.g.
   * for tpm2-tools on swtpm, which serves one connection at a time: a probe must not take it), else
   * one reconnect attempt, to see the TPM come back. A TPM busy with calls for a second counts as
   * answering.
   */
  public java.util.Optional<String> problem() {
    try {
      if (!lock.tryLock(1, java.util.concurrent.TimeUnit.SECONDS)) return java.util.Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return java.util.Optional.empty();
    }
    try {
      if (closed) return java.util.Optional.of("the TPM connection is closed");
      if (!session.isConnected() && unreachable == null) return java.util.Optional.empty();
      session.ensureConnected();
      session.confirmSrkName();
      unreachable = null;
      return java.util.Optional.empty();
    } catch (TpmIoException e) {
      session.disconnect();
      unreachable = e.getMessage();
      return java.util.Optional.of("TPM unreachable: " + e.getMessage());
    } catch (RuntimeException e) {
      session.disconnect();
      unreachable = String.valueOf(e.getMessage());
      return java.util.Optional.of("TPM failing: " + e.getMessage());
    } finally {
      lock.unlock();
    }
  }

  /** How many threads wait for the TPM right now (the connection's lock queue, an estimate). */
  public int waiting() {
    return lock.getQueueLength();
  }

  /** The SRK's name (nameAlg || SHA-256 of its public area): identifies this TPM's owner seed + template. */
  public byte[] srkName() { return execute(TpmSession::srkName); }

  /**
   * Closes the connection without closing this object: the next operation
   * reconnects (and treats every transient object as gone). Lets another
   * process (tpm2-tools) use swtpm, which serves one connection at a time.
   */
  public void releaseConnection() {
    lock.lock();
    try {
      session.close();
    } finally {
      lock.unlock();
    }
  }

  /**
   * Runs an operation alone on the TPM, with the retries and translation described above. Public for
   * the attestation primitives (package {@code attest}), which send their own commands.
   */
  public <T> T execute(Function<TpmSession, T> op) {
    lock.lock();
    try {
      if (closed) throw new BackendException(Kind.UNAVAILABLE, "TPM connection is closed");
      int busy = 0;
      boolean memoryRetried = false;
      boolean idleRetried = false;
      while (true) {
        boolean fresh = false;
        try {
          fresh = session.ensureConnected();
          T result = op.apply(session);
          unreachable = null;
          return result;
        } catch (TpmIoException e) {
          session.disconnect();
          if (!fresh && !idleRetried) {
            idleRetried = true;
            LOG.infof("TPM connection broke (%s); reconnecting", e.getMessage());
            continue;
          }
          unreachable = e.getMessage();
          throw new BackendException(Kind.UNAVAILABLE, "TPM unavailable: " + e.getMessage(), e);
        } catch (TpmRcException e) {
          if (ResponseCodes.isRetryable(e.rc()) && busy < BUSY_RETRIES) {
            busy++;
            pause(5L * busy);
            continue;
          }
          if (ResponseCodes.isObjectMemory(e.rc()) && !memoryRetried) {
            memoryRetried = true;
            LOG.debugf("%s; flushing %d cached objects and retrying", e.getMessage(), session.loadedCount());
            session.flushAllCached();
            continue;
          }
          if (e.base() == ResponseCodes.INITIALIZE) session.disconnect(); // restarted under us
          throw ResponseCodes.classify(e, opOf(e.command()));
        } catch (BackendException e) {
          throw e;
        } catch (RuntimeException e) {
          throw new BackendException(Kind.INTERNAL, "TPM operation failed: " + e, e);
        }
      }
    } finally {
      lock.unlock();
    }
  }

  private static ResponseCodes.Op opOf(String command) {
    return switch (command) {
      case "Load" -> ResponseCodes.Op.LOAD_BLOB;
      case "Sign", "HMAC", "HMAC_Start", "SequenceUpdate", "SequenceComplete", "Unseal", "Certify" ->
          ResponseCodes.Op.USE_KEY;
      case "RSA_Decrypt" -> ResponseCodes.Op.DECRYPT;
      case "Import", "Create(imported data)" -> ResponseCodes.Op.IMPORT;
      default -> ResponseCodes.Op.OTHER;
    };
  }

  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException(Kind.UNAVAILABLE, "interrupted while the TPM was busy");
    }
  }

  boolean isClosed() { return closed; }

  /** Flushes cached objects and the SRK (unless persistent), closes the connection. Idempotent. */
  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) return;
      closed = true;
      session.close();
    } finally {
      lock.unlock();
    }
  }
}

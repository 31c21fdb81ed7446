package io.tpmkms.platform.rpc;

import io.tpmkms.platform.audit.CallInfo;
import java.util.concurrent.CompletableFuture;

/**
 * A service's authorization step of the {@link Pipeline}: whether the caller of
 * this call may do its action on its target. Fails closed: no decision means
 * the call is refused, and nothing runs before an ALLOW.
 */
public interface Authorization {
  /** The outcome of one decision; {@code reason} is what the audit record and the caller see. */
  record Verdict(boolean allowed, String reason, long expiresAtNanos) {
    public static final Verdict NOT_EVALUATED = new Verdict(true, "", Long.MAX_VALUE);
  }

  /**
   * The decision if it is known without waiting (authorization off, remembered, or decided in
   * process); null when it must be asked for ({@link #ask}). Throws a service exception for a
   * target that is not a valid name (the call fails with it, nothing is asked).
   */
  Verdict known(CallInfo call, String action, Target target);

  /** Asks for the decision; completes with a verdict or fails (then the call is refused). */
  CompletableFuture<Verdict> ask(CallInfo call, String action, Target target);

  /** The failure a denied call ends with. */
  RuntimeException denied(Verdict verdict, String action, Target target);

  /**
   * Every call allowed, no decision recorded: for tests of one class, never for a service whose
   * callers are authenticated.
   */
  Authorization OPEN = new Authorization() {
    @Override
    public Verdict known(CallInfo call, String action, Target target) {
      return Verdict.NOT_EVALUATED;
    }

    @Override
    public CompletableFuture<Verdict> ask(CallInfo call, String action, Target target) {
      return CompletableFuture.completedFuture(Verdict.NOT_EVALUATED);
    }

    @Override
    public RuntimeException denied(Verdict verdict, String action, Target target) {
      throw new IllegalStateException("OPEN never denies");
    }
  };
}

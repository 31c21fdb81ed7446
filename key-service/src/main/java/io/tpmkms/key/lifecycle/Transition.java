package io.tpmkms.key.lifecycle;

import static io.tpmkms.key.lifecycle.KeyVersionState.COMPROMISED;
import static io.tpmkms.key.lifecycle.KeyVersionState.DESTROYED;
import static io.tpmkms.key.lifecycle.KeyVersionState.DESTROY_SCHEDULED;
import static io.tpmkms.key.lifecycle.KeyVersionState.DISABLED;
import static io.tpmkms.key.lifecycle.KeyVersionState.ENABLED;
import static io.tpmkms.key.lifecycle.KeyVersionState.PENDING_IMPORT;

import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import java.util.EnumSet;
import java.util.Set;

/**
 * Every state change a key version can undergo, and from which states: the
 * one place where the state machine of docs/key-lifecycle.md is enforced.
 *
 * <p>Invariants held here: the primary version is always ENABLED, so it can be
 * neither disabled, scheduled for destruction nor destroyed (revoking the
 * primary is allowed: the service first rotates, see
 * {@link KeyLifecycleService#revokeVersion}). Repeating a transition that is
 * already in effect (disable a DISABLED version, schedule destruction of a
 * version already scheduled — its first destroy time stays) succeeds and
 * changes nothing; RESTORE is the exception: it needs DESTROY_SCHEDULED.
 */
public enum Transition {
  DISABLE(EnumSet.of(ENABLED), DISABLED, true),
  ENABLE(EnumSet.of(DISABLED), ENABLED, false),
  SCHEDULE_DESTRUCTION(EnumSet.of(ENABLED, DISABLED, COMPROMISED), DESTROY_SCHEDULED, true),
  /** Back to DISABLED, or to COMPROMISED if the version had been revoked. */
  RESTORE(EnumSet.of(DESTROY_SCHEDULED), DISABLED, false),
  REVOKE(EnumSet.of(ENABLED, DISABLED), COMPROMISED, false),
  DESTROY(EnumSet.of(DESTROY_SCHEDULED), DESTROYED, true),
  COMPLETE_IMPORT(EnumSet.of(PENDING_IMPORT), ENABLED, false);

  private final Set<KeyVersionState> from;
  private final KeyVersionState to;
  private final boolean forbiddenOnPrimary;

  Transition(Set<KeyVersionState> from, KeyVersionState to, boolean forbiddenOnPrimary) {
    this.from = from;
    this.to = to;
    this.forbiddenOnPrimary = forbiddenOnPrimary;
  }

  /**
   * The state the version ends in, or {@code current} if the transition is
   * already in effect.
   *
   * @throws ServiceException FAILED_PRECONDITION (PRIMARY_VERSION_PROTECTED or
   *     ILLEGAL_STATE_TRANSITION) when not allowed
   */
  public KeyVersionState apply(KeyVersionState current, boolean primary, boolean wasCompromised) {
    KeyVersionState target = this == RESTORE && wasCompromised ? COMPROMISED : to;
    if (current == target && this != RESTORE) {
      return current;
    }
    if (primary && forbiddenOnPrimary) {
      throw ServiceException.failedPrecondition(KeyReason.PRIMARY_VERSION_PROTECTED,
          "the primary version cannot be " + pastTense() + "; make another version primary or rotate first");
    }
    if (!from.contains(current)) {
      throw ServiceException.failedPrecondition(KeyReason.ILLEGAL_STATE_TRANSITION,
          "cannot " + verb() + " a version in state " + current);
    }
    return target;
  }

  /** The allowed source states, for docs and tests. */
  public Set<KeyVersionState> from() { return Set.copyOf(from); }

  private String verb() { return name().toLowerCase().replace('_', ' '); }

  private String pastTense() {
    return switch (this) {
      case DISABLE -> "disabled";
      case SCHEDULE_DESTRUCTION -> "scheduled for destruction";
      case DESTROY -> "destroyed";
      default -> verb();
    };
  }
}

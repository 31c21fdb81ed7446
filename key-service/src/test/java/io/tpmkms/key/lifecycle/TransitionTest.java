package io.tpmkms.key.lifecycle;

import static io.tpmkms.key.lifecycle.KeyVersionState.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Every transition from every state, on the primary and not: the state machine of docs/key-lifecycle.md. */
class TransitionTest {
  /** The expected table: transition → (from-state → resulting state) for a non-primary version. */
  private static final Map<Transition, Map<KeyVersionState, KeyVersionState>> ALLOWED = Map.of(
      Transition.DISABLE, Map.of(ENABLED, DISABLED, DISABLED, DISABLED),
      Transition.ENABLE, Map.of(DISABLED, ENABLED, ENABLED, ENABLED),
      Transition.SCHEDULE_DESTRUCTION, Map.of(ENABLED, DESTROY_SCHEDULED, DISABLED, DESTROY_SCHEDULED,
          COMPROMISED, DESTROY_SCHEDULED, DESTROY_SCHEDULED, DESTROY_SCHEDULED),
      Transition.RESTORE, Map.of(DESTROY_SCHEDULED, DISABLED),
      Transition.REVOKE, Map.of(ENABLED, COMPROMISED, DISABLED, COMPROMISED, COMPROMISED, COMPROMISED),
      Transition.DESTROY, Map.of(DESTROY_SCHEDULED, DESTROYED, DESTROYED, DESTROYED),
      Transition.COMPLETE_IMPORT, Map.of(PENDING_IMPORT, ENABLED, ENABLED, ENABLED));

  @Test
  void everyTransition_fromEveryState_nonPrimary() {
    for (Transition t : Transition.values()) {
      for (KeyVersionState s : KeyVersionState.values()) {
        KeyVersionState expected = ALLOWED.get(t).get(s);
        if (expected != null) {
          assertEquals(expected, t.apply(s, false, false), t + " from " + s);
        } else {
          ServiceException e = assertThrows(ServiceException.class, () -> t.apply(s, false, false), t + " from " + s);
          assertEquals(ErrorCode.FAILED_PRECONDITION, e.code());
          assertEquals("ILLEGAL_STATE_TRANSITION", e.reason());
        }
      }
    }
  }

  @Test
  void primary_cannotBeDisabledScheduledOrDestroyed_butCanBeRevoked() {
    for (Transition t : EnumSet.of(Transition.DISABLE, Transition.SCHEDULE_DESTRUCTION)) {
      ServiceException e = assertThrows(ServiceException.class, () -> t.apply(ENABLED, true, false));
      assertEquals("PRIMARY_VERSION_PROTECTED", e.reason());
    }
    assertEquals(COMPROMISED, Transition.REVOKE.apply(ENABLED, true, false));
  }

  @Test
  void restore_ofARevokedVersion_returnsToCompromised() {
    assertEquals(COMPROMISED, Transition.RESTORE.apply(DESTROY_SCHEDULED, false, true));
    assertEquals(DISABLED, Transition.RESTORE.apply(DESTROY_SCHEDULED, false, false));
  }

  @Test
  void keyUse_newDataNeedsEnabled_oldDataAcceptsCompromised() {
    Set<KeyUse> newData = EnumSet.of(KeyUse.ENCRYPT, KeyUse.SIGN, KeyUse.MAC_SIGN, KeyUse.EXPORT);
    for (KeyUse use : KeyUse.values()) {
      for (KeyVersionState s : KeyVersionState.values()) {
        boolean allowed = s == ENABLED || (s == COMPROMISED && !newData.contains(use));
        if (allowed) {
          use.check("ns/k", 1, s);
        } else {
          ServiceException e = assertThrows(ServiceException.class, () -> use.check("ns/k", 1, s), use + " in " + s);
          assertEquals(ErrorCode.FAILED_PRECONDITION, e.code());
          String reason = switch (s) {
            case COMPROMISED -> "KEY_VERSION_COMPROMISED";
            case DESTROYED -> "KEY_VERSION_DESTROYED";
            default -> "KEY_VERSION_NOT_ENABLED";
          };
          assertEquals(reason, e.reason(), use + " in " + s);
        }
      }
    }
  }
}

package io.tpmkms.policy.engine;

import java.util.Locale;

/** A tpmkms role: what a role binding grants, as the Cedar action group {@code "role:<name>"}. */
public enum Role {
  ADMIN, USER, DUPLICATOR, AUDITOR, VIEWER,
  /** A node agent (ADR 0038): attests its node and is released keys — no Decrypt, no reads of keys. */
  NODE;

  /** "admin", "user", ... as in the schema and in decision explanations. */
  public String label() { return name().toLowerCase(Locale.ROOT); }

  /** The id of the Cedar action group: {@code Tpmkms::Action::"role:admin"}. */
  public String actionGroup() { return "role:" + label(); }
}

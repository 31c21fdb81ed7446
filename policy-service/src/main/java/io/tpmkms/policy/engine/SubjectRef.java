package io.tpmkms.policy.engine;

import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;

/**
 * Who a role binding applies to, as a Cedar entity a {@code User} can be
 * {@code in}: the user itself (token subject), a group (path, ancestors
 * included), a realm role, a client role ("client/role") or an OAuth client.
 */
public record SubjectRef(Kind kind, String value) {
  static final int MAX_LENGTH = 255;

  public enum Kind {
    USER("User", "user"),
    GROUP("Group", "group"),
    REALM_ROLE("RealmRole", "realm role"),
    CLIENT_ROLE("ClientRole", "client role"),
    CLIENT("Client", "client");

    final String entityType;
    final String label;

    Kind(String entityType, String label) {
      this.entityType = entityType;
      this.label = label;
    }

    /** The Cedar entity type's base name. */
    public String entityType() { return entityType; }
  }

  /**
   * A checked subject. Fails INVALID_ARGUMENT (INVALID_SUBJECT) when the value
   * is empty, too long, holds control characters, a group is not a path
   * ("/name") or a client role lacks its "client/" part.
   */
  public static SubjectRef of(Kind kind, String value) {
    if (kind == null) throw ServiceException.invalid(PolicyReason.INVALID_SUBJECT, "subject: exactly one kind must be set");
    if (value == null || value.isEmpty()) {
      throw ServiceException.invalid(PolicyReason.INVALID_SUBJECT, "subject: " + kind.label + " is empty");
    }
    if (value.length() > MAX_LENGTH || value.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
      throw ServiceException.invalid(PolicyReason.INVALID_SUBJECT,
          "subject: at most " + MAX_LENGTH + " characters, no control characters");
    }
    if (kind == Kind.GROUP && (!value.startsWith("/") || value.endsWith("/") && value.length() > 1 || value.contains("//"))) {
      throw ServiceException.invalid(PolicyReason.INVALID_SUBJECT, "subject: a group is its full path, e.g. \"/payments\"");
    }
    if (kind == Kind.CLIENT_ROLE && (value.indexOf('/') <= 0 || value.endsWith("/"))) {
      throw ServiceException.invalid(PolicyReason.INVALID_SUBJECT, "subject: a client role is \"<client>/<role>\"");
    }
    return new SubjectRef(kind, value);
  }

  /** "group /payments", "realm role tpmkms-admin", ... */
  public String describe() { return kind.label + " " + value; }
}

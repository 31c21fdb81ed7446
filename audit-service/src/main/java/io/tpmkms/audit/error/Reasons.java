package io.tpmkms.audit.error;

/**
 * The stable {@code google.rpc.ErrorInfo.reason} values of the audit service
 * (docs/audit.md lists each with its status). Never renamed.
 */
public final class Reasons {
  private Reasons() {}


  // INVALID_ARGUMENT
  public static final String INVALID_REQUEST = "INVALID_REQUEST";
  public static final String TOO_MANY_EVENTS = "TOO_MANY_EVENTS";
  public static final String INVALID_EVENT_ID = "INVALID_EVENT_ID";
  public static final String MISSING_FIELD = "MISSING_FIELD";
  public static final String FIELD_TOO_LONG = "FIELD_TOO_LONG";
  public static final String INVALID_CHARACTER = "INVALID_CHARACTER";
  public static final String INVALID_TIME = "INVALID_TIME";
  public static final String INVALID_DECISION = "INVALID_DECISION";
  public static final String INVALID_DIGEST = "INVALID_DIGEST";
  public static final String INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN";
  public static final String INVALID_PAGE_SIZE = "INVALID_PAGE_SIZE";
  public static final String INVALID_RANGE = "INVALID_RANGE";

  // NOT_FOUND
  public static final String CHECKPOINT_NOT_FOUND = "CHECKPOINT_NOT_FOUND";

  // UNAVAILABLE / INTERNAL
  public static final String DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE";
  public static final String BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE";
  public static final String OVERLOADED = "OVERLOADED";
  public static final String INTERNAL = "INTERNAL";
}

package io.tpmkms.policy.error;

/**
 * The stable {@code google.rpc.ErrorInfo.reason} values of the policy
 * service. Clients may switch on them; they are never renamed or reused
 * (docs/errors.md, policy section). Reasons shared with the key service
 * ({@code INVALID_REQUEST}, {@code CONCURRENT_MODIFICATION}, ...) mean the same
 * thing here.
 */
public final class Reasons {
  private Reasons() {}

  // INVALID_ARGUMENT
  public static final String INVALID_REQUEST = "INVALID_REQUEST";
  public static final String INVALID_POLICY_ID = "INVALID_POLICY_ID";
  /** Policy text that does not parse, is not exactly one policy, or fails schema validation. */
  public static final String POLICY_INVALID = "POLICY_INVALID";
  public static final String INVALID_ACTION = "INVALID_ACTION";
  public static final String INVALID_RESOURCE = "INVALID_RESOURCE";
  public static final String INVALID_CONTEXT = "INVALID_CONTEXT";
  public static final String INVALID_PRINCIPAL = "INVALID_PRINCIPAL";
  public static final String INVALID_SUBJECT = "INVALID_SUBJECT";
  public static final String INVALID_ROLE = "INVALID_ROLE";
  public static final String INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN";

  // NOT_FOUND / ALREADY_EXISTS
  public static final String POLICY_NOT_FOUND = "POLICY_NOT_FOUND";
  public static final String POLICY_VERSION_NOT_FOUND = "POLICY_VERSION_NOT_FOUND";
  public static final String POLICY_ALREADY_EXISTS = "POLICY_ALREADY_EXISTS";
  public static final String ROLE_BINDING_NOT_FOUND = "ROLE_BINDING_NOT_FOUND";
  public static final String ROLE_BINDING_ALREADY_EXISTS = "ROLE_BINDING_ALREADY_EXISTS";

  // UNAUTHENTICATED / PERMISSION_DENIED
  public static final String UNAUTHENTICATED = "UNAUTHENTICATED";
  /** The caller's own request was decided DENY; the message names the decision's reason. */
  public static final String PERMISSION_DENIED = "PERMISSION_DENIED";

  // ABORTED
  public static final String CONCURRENT_MODIFICATION = "CONCURRENT_MODIFICATION";

  // UNAVAILABLE / INTERNAL
  public static final String DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE";
  public static final String INTERNAL = "INTERNAL";
}

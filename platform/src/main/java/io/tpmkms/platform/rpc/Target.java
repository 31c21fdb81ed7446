package io.tpmkms.platform.rpc;

/**
 * What an RPC acts on, as its declaration takes it from the typed request:
 * the resource the authorization decision is about and the key name the
 * audit event carries. The text is what the caller sent, not yet validated:
 * the service's {@link Authorization} parses it (an invalid name fails the
 * call with INVALID_ARGUMENT before anything runs), the audit trail records
 * it as sent (bounded).
 */
public record Target(Kind kind, String key, String namespace, String name) {
  public enum Kind {
    /** One key, named "namespace/name" in one field. */
    KEY,
    /** One key named by two fields (CreateKey). */
    KEY_PARTS,
    /** A namespace; empty means every namespace (the deployment). */
    NAMESPACE,
    /** The whole deployment. */
    DEPLOYMENT,
    /** A policy-service resource message (namespace, key name; either may be empty). */
    RESOURCE,
    /** Any authenticated caller may make this call (WhoAmI): no decision. */
    ANY_CALLER,
    /**
     * The handler decides itself, because the resource is known only after a read (a role
     * binding's resource) or the rule is not a policy decision (who may ask for decisions). Each
     * such declaration says why.
     */
    IN_HANDLER,
    /** A batch: no decision about the call, one per distinct key of its items (the {@link Pipeline}'s batch). */
    ITEMS
  }

  private static final Target DEPLOYMENT_TARGET = new Target(Kind.DEPLOYMENT, "", "", "");

  public static Target key(String key) {
    return new Target(Kind.KEY, key, "", "");
  }

  public static Target key(String namespace, String name) {
    return new Target(Kind.KEY_PARTS, namespace + "/" + name, namespace, name);
  }

  public static Target namespace(String namespace) {
    return new Target(Kind.NAMESPACE, "", namespace, "");
  }

  public static Target deployment() {
    return DEPLOYMENT_TARGET;
  }

  public static Target resource(String namespace, String keyName) {
    return new Target(Kind.RESOURCE, "", namespace, keyName);
  }

  public static Target anyCaller() {
    return new Target(Kind.ANY_CALLER, "", "", "");
  }

  /** A batch's call: its items are decided one key at a time. */
  public static Target items() {
    return new Target(Kind.ITEMS, "", "", "");
  }

  /** @param why why the handler authorizes this call itself (documentation; not used at run time) */
  public static Target inHandler(String why) {
    return new Target(Kind.IN_HANDLER, "", "", "");
  }

  /** The key name for the audit event: as sent for a key, empty for anything else. */
  public String auditKey() {
    return key;
  }
}

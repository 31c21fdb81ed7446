package io.tpmkms.policy.engine;

import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;
import java.util.regex.Pattern;

/**
 * What a request acts on or a binding applies to: the deployment (both parts
 * empty), a namespace (namespace only) or one key (both). Names follow the key
 * service's rules, so a binding can name exactly what the key service asks
 * about.
 */
public record ResourceRef(String namespace, String keyName) {
  public static final ResourceRef DEPLOYMENT = new ResourceRef("", "");
  /** Id of the single deployment entity, {@code Tpmkms::Deployment::"tpmkms"}. */
  public static final String DEPLOYMENT_ID = "tpmkms";

  private static final Pattern NAMESPACE = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");
  private static final Pattern KEY_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

  public enum Kind { DEPLOYMENT, NAMESPACE, KEY }

  public ResourceRef {
    namespace = namespace == null ? "" : namespace;
    keyName = keyName == null ? "" : keyName;
  }

  /** A checked resource. Fails INVALID_ARGUMENT (INVALID_RESOURCE) on a bad name or a key without namespace. */
  public static ResourceRef of(String namespace, String keyName) {
    ResourceRef r = new ResourceRef(namespace, keyName);
    if (r.namespace.isEmpty() && !r.keyName.isEmpty()) {
      throw ServiceException.invalid(PolicyReason.INVALID_RESOURCE, "resource: key_name without namespace");
    }
    if (!r.namespace.isEmpty() && !NAMESPACE.matcher(r.namespace).matches()) {
      throw ServiceException.invalid(PolicyReason.INVALID_RESOURCE,
          "resource: namespace must match [a-z0-9][a-z0-9._-]{0,62}");
    }
    if (!r.keyName.isEmpty() && !KEY_NAME.matcher(r.keyName).matches()) {
      throw ServiceException.invalid(PolicyReason.INVALID_RESOURCE,
          "resource: key_name must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    }
    return r;
  }

  public static ResourceRef namespace(String namespace) { return of(namespace, ""); }

  public static ResourceRef key(String namespace, String keyName) { return of(namespace, keyName); }

  public Kind kind() {
    if (namespace.isEmpty()) return Kind.DEPLOYMENT;
    return keyName.isEmpty() ? Kind.NAMESPACE : Kind.KEY;
  }

  /** The Cedar entity type's base name ("Deployment", "Namespace", "Key"). */
  public String entityType() {
    return switch (kind()) {
      case DEPLOYMENT -> "Deployment";
      case NAMESPACE -> "Namespace";
      case KEY -> "Key";
    };
  }

  /** The Cedar entity id: "tpmkms", "payments", "payments/card-tokens". */
  public String entityId() {
    return switch (kind()) {
      case DEPLOYMENT -> DEPLOYMENT_ID;
      case NAMESPACE -> namespace;
      case KEY -> namespace + "/" + keyName;
    };
  }

  /** This resource and everything it lies in, innermost first (key, namespace, deployment). */
  public java.util.List<ResourceRef> selfAndAncestors() {
    return switch (kind()) {
      case DEPLOYMENT -> java.util.List.of(this);
      case NAMESPACE -> java.util.List.of(this, DEPLOYMENT);
      case KEY -> java.util.List.of(this, new ResourceRef(namespace, ""), DEPLOYMENT);
    };
  }

  /** "the deployment", "namespace payments", "key payments/card-tokens". */
  public String describe() {
    return switch (kind()) {
      case DEPLOYMENT -> "the deployment";
      case NAMESPACE -> "namespace " + namespace;
      case KEY -> "key " + namespace + "/" + keyName;
    };
  }
}

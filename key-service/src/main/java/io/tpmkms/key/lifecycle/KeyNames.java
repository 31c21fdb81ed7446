package io.tpmkms.key.lifecycle;

import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Names, labels and their limits. A key is "NAMESPACE/NAME"; both parts have
 * a fixed charset so names are safe in logs, URLs, policies and file names.
 */
public final class KeyNames {
  public static final Pattern NAMESPACE = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");
  public static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  public static final Pattern LABEL_KEY = Pattern.compile("[a-z][a-z0-9_-]{0,62}");
  public static final Pattern LABEL_VALUE = Pattern.compile("[a-z0-9_-]{0,63}");
  public static final int MAX_LABELS = 64;

  private KeyNames() {}

  /** A parsed, valid key name. */
  public record KeyName(String namespace, String name) {
    public String full() { return namespace + "/" + name; }
    @Override public String toString() { return full(); }
  }

  public static KeyName parse(String key) {
    if (key == null || key.isEmpty()) {
      throw ServiceException.invalid(KeyReason.INVALID_KEY_NAME, "key is required, as \"namespace/name\"");
    }
    int slash = key.indexOf('/');
    if (slash < 0) {
      throw ServiceException.invalid(KeyReason.INVALID_KEY_NAME, "key must be \"namespace/name\"");
    }
    return of(key.substring(0, slash), key.substring(slash + 1));
  }

  public static KeyName of(String namespace, String name) {
    checkNamespace(namespace);
    if (name == null || !NAME.matcher(name).matches()) {
      throw ServiceException.invalid(KeyReason.INVALID_KEY_NAME,
          "key name must match " + NAME.pattern() + " (1-128 characters)");
    }
    return new KeyName(namespace, name);
  }

  public static void checkNamespace(String namespace) {
    if (namespace == null || !NAMESPACE.matcher(namespace).matches()) {
      throw ServiceException.invalid(KeyReason.INVALID_NAMESPACE,
          "namespace must match " + NAMESPACE.pattern() + " (1-63 characters)");
    }
  }

  public static void checkLabels(Map<String, String> labels) {
    if (labels.size() > MAX_LABELS) {
      throw ServiceException.invalid(KeyReason.INVALID_LABEL, "at most " + MAX_LABELS + " labels");
    }
    labels.forEach((k, v) -> {
      if (!LABEL_KEY.matcher(k).matches()) {
        throw ServiceException.invalid(KeyReason.INVALID_LABEL, "label key must match " + LABEL_KEY.pattern());
      }
      if (!LABEL_VALUE.matcher(v).matches()) {
        throw ServiceException.invalid(KeyReason.INVALID_LABEL, "label value must match " + LABEL_VALUE.pattern());
      }
    });
  }

  public static int checkVersion(int version) {
    if (version <= 0) {
      throw ServiceException.invalid(KeyReason.INVALID_VERSION, "version must be 1 or more");
    }
    return version;
  }
}

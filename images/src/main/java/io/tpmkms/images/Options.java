package io.tpmkms.images;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** The command line of {@link ImageBuilder}: {@code --name=value} pairs, each one required. */
record Options(
    Path projectRoot,
    Path output,
    Path work,
    String version,
    String source,
    String licenses,
    boolean swtpm,
    Path swtpmBinary) {

  static Options parse(String[] args) {
    Map<String, String> values = new HashMap<>();
    for (String arg : args) {
      int eq = arg.indexOf('=');
      if (!arg.startsWith("--") || eq < 0) {
        throw new IllegalArgumentException("expected --name=value, got: " + arg);
      }
      values.put(arg.substring(2, eq), arg.substring(eq + 1));
    }
    Options options = new Options(
        path(values, "project-root"),
        path(values, "output"),
        path(values, "work"),
        required(values, "version"),
        required(values, "source"),
        required(values, "licenses"),
        Boolean.parseBoolean(required(values, "swtpm")),
        path(values, "swtpm-binary"));
    if (!values.isEmpty()) {
      throw new IllegalArgumentException("unknown options: " + values.keySet());
    }
    return options;
  }

  private static Path path(Map<String, String> values, String name) {
    return Path.of(required(values, name)).toAbsolutePath().normalize();
  }

  private static String required(Map<String, String> values, String name) {
    String value = values.remove(name);
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException("missing --" + name + "=...");
    }
    return value;
  }
}

package io.tpmkms.helm;

import java.io.InputStream;
import java.io.StringReader;
import java.lang.annotation.Annotation;
import java.lang.reflect.Method;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The configuration a packaged service reads, taken from its build output ({@code target/quarkus-app}), not
 * from a list kept by hand: the {@code @ConfigMapping} roots the application registers (Quarkus generates a
 * synthetic bean for each, in {@code generated-bytecode.jar}) walked by reflection (ours and Quarkus's own,
 * such as {@code quarkus.datasource}), the packaged {@code application.properties}, and the environment
 * variables its {@code ${NAME:default}} expressions name. The console ({@code admin-console}) the same way,
 * except that its application.properties is read from its source ({@code src/main/resources}): the module
 * is being worked on, and what the chart sets must match what it reads now, not at its last package.
 */
final class PackagedConfig {
  /** One leaf property; {@code *} stands for a map key. */
  record Property(String name, Type type, boolean required, String root) {}

  private static final Pattern SYNTHETIC_BEAN = Pattern.compile("^(.+)_[A-Za-z0-9_-]{27}_Synthetic_Bean\\.class$");
  private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([A-Za-z0-9_.\\-\"]+)(?::([^}]*))?}");

  /** The container name the chart gives it (key-service, policy-service, audit-service, console). */
  final String service;
  final Map<String, Property> properties = new TreeMap<>();
  /**
   * Properties of build-time roots ({@code @ConfigRoot(phase = BUILD_TIME | BUILD_AND_RUN_TIME_FIXED)}):
   * fixed when the application was built, so a variable for one changes nothing in a container.
   */
  final Map<String, Property> buildTime = new TreeMap<>();
  private Map<String, Property> walking = properties;
  /** application.properties without profile-specific entries. */
  final Map<String, String> applicationProperties = new TreeMap<>();
  /** Environment variables named in ${...} of application.properties, with their default (null: none). */
  final Map<String, String> envPlaceholders = new TreeMap<>();
  /** Which property each such environment variable feeds. */
  final Map<String, String> placeholderProperty = new TreeMap<>();

  private PackagedConfig(String service) {
    this.service = service;
  }

  static PackagedConfig of(String service) throws Exception {
    return of(service, service, null);
  }

  /**
   * {@code module}'s packaged configuration, named {@code service}; {@code applicationProperties}: read
   * that file instead of the packaged application.properties (null: the packaged one).
   */
  static PackagedConfig of(String service, String module, Path applicationProperties) throws Exception {
    Path app = Path.of("..").toAbsolutePath().normalize().resolve(module).resolve("target/quarkus-app");
    Path generated = app.resolve("quarkus/generated-bytecode.jar");
    if (!Files.isRegularFile(generated)) {
      throw new IllegalStateException("not packaged: " + app + " (run the build through the package phase first)");
    }
    PackagedConfig c = new PackagedConfig(service);
    List<URL> urls = new ArrayList<>();
    try (Stream<Path> walk = Stream.concat(Files.walk(app.resolve("app")), Files.walk(app.resolve("lib")))) {
      for (Path p : walk.filter(p -> p.toString().endsWith(".jar")).toList()) urls.add(p.toUri().toURL());
    }
    try (URLClassLoader loader = new URLClassLoader(urls.toArray(URL[]::new), ClassLoader.getPlatformClassLoader());
         JarFile jar = new JarFile(generated.toFile())) {
      List<String> roots = jar.stream().map(e -> SYNTHETIC_BEAN.matcher(e.getName()))
          .filter(Matcher::matches).map(m -> m.group(1).replace('/', '.')).toList();
      for (String name : roots) {
        Class<?> type;
        try {
          type = Class.forName(name, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
          continue; // a synthetic bean of something that is not a class on the runtime path
        }
        Annotation mapping = annotation(type, "io.smallrye.config.ConfigMapping");
        if (!type.isInterface() || mapping == null) continue;
        String prefix = (String) attribute(mapping, "prefix");
        String naming = String.valueOf(attribute(mapping, "namingStrategy"));
        Annotation root = annotation(type, "io.quarkus.runtime.annotations.ConfigRoot");
        boolean fixedAtBuild = root != null && !((Enum<?>) attribute(root, "phase")).name().equals("RUN_TIME");
        c.walking = fixedAtBuild ? c.buildTime : c.properties;
        c.walk(type, prefix, naming, false, name, 0);
        c.walking = c.properties;
      }
      try (InputStream in = applicationProperties != null ? Files.newInputStream(applicationProperties)
          : loader.getResourceAsStream("application.properties")) {
        if (in == null) throw new IllegalStateException("no application.properties in " + app);
        // keep the text: Properties would resolve nothing, but we want the raw ${...} expressions
        String text = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        Properties props = new Properties();
        props.load(new StringReader(text));
        for (String key : props.stringPropertyNames()) {
          if (key.startsWith("%")) continue;
          String value = props.getProperty(key);
          c.applicationProperties.put(key, value);
          Matcher m = PLACEHOLDER.matcher(value);
          while (m.find()) {
            String ref = m.group(1);
            if (ref.contains(".")) continue; // a property reference, not an environment variable
            c.envPlaceholders.put(ref, m.group(2));
            c.placeholderProperty.putIfAbsent(ref, key);
          }
        }
      }
    }
    return c;
  }

  /** The environment variable SmallRye Config maps to a property name: upper case, every other character '_'. */
  static String envName(String property) {
    StringBuilder b = new StringBuilder();
    for (char ch : property.toCharArray()) b.append(Character.isLetterOrDigit(ch) ? Character.toUpperCase(ch) : '_');
    return b.toString();
  }

  /** The property an environment variable sets in this service, if it sets any. */
  Optional<String> propertyOf(String env) {
    for (String key : applicationProperties.keySet()) {
      if (envName(key).equals(env) && !fixedAtBuild(key)) return Optional.of(key);
    }
    for (Property p : properties.values()) {
      if (envPattern(p.name()).matcher(env).matches()) return Optional.of(p.name());
    }
    return Optional.empty();
  }

  /** A property name as environment variable names spell it; a map key ({@code *}) is one or more segments. */
  static Pattern envPattern(String property) {
    StringBuilder r = new StringBuilder();
    String[] parts = property.split("\\*", -1);
    for (int i = 0; i < parts.length; i++) {
      if (i > 0) r.append("[A-Z0-9_]+");
      r.append(Pattern.quote(envName(parts[i])));
    }
    return Pattern.compile(r.toString());
  }

  /** Whether the property belongs to a build-time root (a runtime value of it is ignored). */
  boolean fixedAtBuild(String property) {
    for (Property p : buildTime.values()) {
      if (Pattern.matches(Pattern.quote(p.name()).replace("*", "\\E[^.]+\\Q"), property)) return true;
    }
    return false;
  }

  /** Whether the service reads this environment variable (as a property, or named in application.properties). */
  boolean reads(String env) {
    return envPlaceholders.containsKey(env) || propertyOf(env).isPresent();
  }

  /** The mapped property (with its type) that the value of this environment variable ends up in. */
  Optional<Property> target(String env) {
    String property = placeholderProperty.containsKey(env) ? placeholderProperty.get(env) : propertyOf(env).orElse(null);
    if (property == null) return Optional.empty();
    for (Property p : properties.values()) {
      if (Pattern.matches(Pattern.quote(p.name()).replace("*", "\\E[^.]+\\Q"), property)) return Optional.of(p);
    }
    return Optional.empty();
  }

  private void walk(Class<?> type, String prefix, String naming, boolean optional, String root, int depth) {
    if (depth > 8) return;
    Set<String> seen = new LinkedHashSet<>();
    for (Method m : type.getMethods()) {
      if (m.isDefault() || m.getParameterCount() != 0 || java.lang.reflect.Modifier.isStatic(m.getModifiers())) continue;
      if (!seen.add(m.getName())) continue;
      String segment;
      Annotation withName = annotation(m, "io.smallrye.config.WithName");
      if (annotation(m, "io.smallrye.config.WithParentName") != null) {
        segment = null;
      } else if (withName != null) {
        segment = (String) attribute(withName, "value");
      } else {
        segment = "VERBATIM".equals(naming) ? m.getName() : "SNAKE_CASE".equals(naming)
            ? hyphenate(m.getName(), '_') : hyphenate(m.getName(), '-');
      }
      String name = segment == null ? prefix : prefix.isEmpty() ? segment : prefix + "." + segment;
      boolean hasDefault = annotation(m, "io.smallrye.config.WithDefault") != null;
      member(m.getGenericReturnType(), name, naming, optional, hasDefault, root, depth,
          annotation(m, "io.smallrye.config.WithUnnamedKey") != null);
    }
  }

  private void member(Type t, String name, String naming, boolean optional, boolean hasDefault, String root,
      int depth, boolean unnamedKey) {
    Class<?> raw = raw(t);
    if (raw == Optional.class) {
      member(arg(t, 0), name, naming, true, hasDefault, root, depth, unnamedKey);
    } else if (raw == Map.class) {
      if (unnamedKey) member(arg(t, 1), name, naming, true, true, root, depth + 1, false);
      member(arg(t, 1), name + ".*", naming, true, true, root, depth + 1, false);
    } else if ((raw == List.class || raw == Set.class) && isGroup(raw(arg(t, 0)))) {
      member(arg(t, 0), name + "[*]", naming, true, true, root, depth + 1, false);
    } else if (isGroup(raw)) {
      walk(raw, name, naming, optional, root, depth + 1);
    } else {
      walking.put(name, new Property(name, t, !optional && !hasDefault, root));
    }
  }

  private static boolean isGroup(Class<?> c) {
    return c != null && c.isInterface() && !c.getName().startsWith("java.");
  }

  private static Class<?> raw(Type t) {
    if (t instanceof Class<?> c) return c;
    if (t instanceof ParameterizedType p) return (Class<?>) p.getRawType();
    return null;
  }

  private static Type arg(Type t, int i) {
    return t instanceof ParameterizedType p ? p.getActualTypeArguments()[i] : Object.class;
  }

  private static String hyphenate(String camel, char sep) {
    StringBuilder b = new StringBuilder();
    for (char ch : camel.toCharArray()) {
      if (Character.isUpperCase(ch)) {
        if (b.length() > 0) b.append(sep);
        b.append(Character.toLowerCase(ch));
      } else {
        b.append(ch);
      }
    }
    return b.toString();
  }

  private static Annotation annotation(java.lang.reflect.AnnotatedElement e, String type) {
    for (Annotation a : e.getAnnotations()) {
      if (a.annotationType().getName().equals(type)) return a;
    }
    return null;
  }

  private static Object attribute(Annotation a, String name) {
    try {
      return a.annotationType().getMethod(name).invoke(a);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(e);
    }
  }

  static Map<String, PackagedConfig> services() throws Exception {
    Map<String, PackagedConfig> all = new LinkedHashMap<>();
    for (String s : List.of("key-service", "policy-service", "audit-service")) all.put(s, of(s));
    return all;
  }

  /** The console's source application.properties (what it reads now). */
  static final Path CONSOLE_PROPERTIES = Path.of("..").toAbsolutePath().normalize()
      .resolve("admin-console/src/main/resources/application.properties");

  /** The admin console: container "console" of the chart, module admin-console. */
  static PackagedConfig console() throws Exception {
    return of("console", "admin-console", CONSOLE_PROPERTIES);
  }

  @Override
  public String toString() {
    return service + ": " + properties.size() + " mapped properties";
  }

}

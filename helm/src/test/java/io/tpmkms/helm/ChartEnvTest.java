package io.tpmkms.helm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The environment the chart gives each service against what the packaged service reads (its registered
 * {@code @ConfigMapping}s, Quarkus's included, and its application.properties; see {@link PackagedConfig}):
 * every variable set is read, with a value its property's type accepts, and every setting a pod cannot do
 * without is set: required properties without a packaged value, settings whose packaged default only suits a
 * laptop (loopback addresses, dev-only secrets, a relative data directory, an empty audit address), and the
 * database, probe port and TLS files. The console's container the same way against the packaged console
 * (its {@code @ConfigMapping} tpmkms.console, Quarkus's roots) and its source application.properties: every
 * TPMKMS_CONSOLE_* (and other) variable is one it reads, its loopback defaults (listen address, the
 * services' addresses, the realm) are replaced, and its TLS files are set when the services speak TLS.
 */
class ChartEnvTest {
  /** Read by the JVM itself, not by the application's configuration. */
  static final Set<String> READ_BY_THE_JVM = Set.of("JAVA_TOOL_OPTIONS");
  /** Without these a pod is not a deployment: no database, no probe port, no TLS. */
  static final List<String> DEPLOYMENT = List.of("quarkus.datasource.jdbc.url", "quarkus.datasource.username",
      "quarkus.datasource.password", "tpmkms.health.port");
  static final List<String> TLS = List.of("tpmkms.tls.server.cert-file", "tpmkms.tls.server.key-file",
      "tpmkms.tls.server.client-ca-file", "tpmkms.tls.client.ca-file");

  /** The console's TLS towards the services: the CA, and a client certificate where the services require one. */
  static final List<String> CONSOLE_TLS_CA = List.of("tpmkms.console.tls.ca-file");
  static final List<String> CONSOLE_TLS_CLIENT = List.of("tpmkms.console.tls.cert-file", "tpmkms.console.tls.key-file");

  static Map<String, PackagedConfig> services;
  static PackagedConfig console;

  @BeforeAll
  static void read() throws Exception {
    services = PackagedConfig.services();
    console = PackagedConfig.console();
  }

  static java.util.stream.Stream<Path> valuesFiles() throws Exception {
    return ChartRenderTest.valuesFiles();
  }

  @Test
  void packagedConfig_isReadFromTheBuild() {
    PackagedConfig key = services.get("key-service");
    // ours, Quarkus's and a placeholder: proof the reader sees all three kinds
    assertTrue(key.properties.containsKey("tpmkms.tls.server.cert-file"), key.properties.keySet().toString());
    assertTrue(key.properties.containsKey("tpmkms.backend.tpm.transport"));
    assertTrue(key.properties.containsKey("quarkus.datasource.jdbc.url"));
    assertEquals("127.0.0.1", key.envPlaceholders.get("TPMKMS_GRPC_HOST"));
    assertTrue(key.reads("QUARKUS_DATASOURCE_PASSWORD"));
    assertTrue(key.reads("TPMKMS_AUDIT_FORWARD_TO"));
    assertFalse(key.reads("TPMKMS_AUDIT_FORWARDTO"));
    assertFalse(key.reads("TPMKMS_POLICY_RELOAD_INTERVAL"), "the policy service's setting, not the key service's");
    assertFalse(services.get("audit-service").reads("TPMKMS_AUDIT_FORWARD_TO"), "the audit service forwards nothing");
    assertTrue(key.properties.get("tpmkms.data-dir").required());
    // fixed when the service was built: a variable for it would change nothing in the container
    assertTrue(key.fixedAtBuild("quarkus.datasource.db-kind"), key.buildTime.keySet().toString());
    assertFalse(key.reads("QUARKUS_DATASOURCE_DB_KIND"));
    assertFalse(key.fixedAtBuild("quarkus.datasource.jdbc.url"));
  }

  @Test
  void consoleConfig_isReadFromItsBuildAndItsSource() {
    // placeholders of admin-console/src/main/resources/application.properties, with their defaults
    assertEquals("127.0.0.1", console.envPlaceholders.get("TPMKMS_CONSOLE_HOST"), console.envPlaceholders.toString());
    assertEquals("8095", console.envPlaceholders.get("TPMKMS_CONSOLE_PORT"));
    assertEquals("quarkus.oidc.client-id", console.placeholderProperty.get("TPMKMS_CONSOLE_CLIENT_ID"));
    assertEquals("tpmkms.console.key-service", console.placeholderProperty.get("TPMKMS_CONSOLE_KEY_SERVICE"));
    assertTrue(console.reads("TPMKMS_CONSOLE_SECURE_COOKIES"));
    assertTrue(console.reads("TPMKMS_OIDC_URL"));
    // its @ConfigMapping (ConsoleConfig, prefix tpmkms.console): the TLS files and the EK CA file
    assertEquals(java.util.Optional.of("tpmkms.console.tls.ca-file"), console.propertyOf("TPMKMS_CONSOLE_TLS_CA_FILE"));
    assertTrue(console.reads("TPMKMS_CONSOLE_TLS_CERT_FILE") && console.reads("TPMKMS_CONSOLE_TLS_KEY_FILE"));
    assertTrue(console.reads("TPMKMS_CONSOLE_EK_CA_FILE"));
    assertFalse(console.reads("TPMKMS_CONSOLE_TLS_CA"), "no such setting");
    assertFalse(console.reads("TPMKMS_CONSOLE_EKCA_FILE"), "no such setting");
    // the services' settings are not the console's
    assertFalse(console.reads("TPMKMS_GRPC_HOST"));
    assertFalse(console.reads("TPMKMS_TLS_CLIENT_CA_FILE"));
    assertFalse(console.reads("TPMKMS_HEALTH_PORT"));
    assertFalse(services.get("key-service").reads("TPMKMS_CONSOLE_KEY_SERVICE"));
  }

  @ParameterizedTest
  @MethodSource("valuesFiles")
  void everyVariableSetIsRead_andEveryNeededOneIsSet(Path values) {
    List<String> problems = problemsOf(ChartRenderTest.template().withValuesFile(values));
    assertEquals(List.of(), problems, values.toString());
  }

  /**
   * The console's variants: TLS off (no TLS variable), certificates from existing Secrets without one for
   * the console (the CA only), an EK CA Secret and values of its own.
   */
  @ParameterizedTest
  @MethodSource("consoleVariants")
  void consoleVariants_setOnlyWhatTheConsoleReads(Map<String, String> set) {
    var command = ChartRenderTest.template().withValuesFile(Path.of("src/test/resources/required.yaml"));
    set.forEach(command::set);
    assertEquals(List.of(), problemsOf(command), set.toString());
  }

  static java.util.stream.Stream<Map<String, String>> consoleVariants() {
    return java.util.stream.Stream.of(
        Map.of("tls.enabled", "false", "tls.allowInsecure", "true"),
        Map.of("tls.source", "existingSecrets", "tls.existingSecrets.keyService", "k-tls",
            "tls.existingSecrets.policyService", "p-tls", "tls.existingSecrets.auditService", "a-tls"),
        Map.of("tls.source", "existingSecrets", "tls.existingSecrets.keyService", "k-tls",
            "tls.existingSecrets.policyService", "p-tls", "tls.existingSecrets.auditService", "a-tls",
            "tls.existingSecrets.console", "c-tls", "tls.clientAuth", "required"),
        Map.of("console.ekCa.existingSecret", "ek-cas", "console.secureCookies", "false",
            "console.oidc.issuerUrl", "https://sso.internal.example.com/realms/tpmkms", "console.replicas", "2"));
  }

  /** The problems of every tpmkms container the command renders (the three services and the console). */
  static List<String> problemsOf(com.marcnuri.helm.TemplateCommand command) {
    String yaml = command.call();
    Map<String, PodSpec> pods = new LinkedHashMap<>();
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) continue;
      Object o = Serialization.unmarshal(doc);
      if (o instanceof StatefulSet s) pods.put(s.getMetadata().getName(), s.getSpec().getTemplate().getSpec());
      if (o instanceof Deployment d) pods.put(d.getMetadata().getName(), d.getSpec().getTemplate().getSpec());
    }
    List<String> problems = new ArrayList<>();
    int checked = 0;
    List<EnvVar> keyService = null;
    List<EnvVar> consoleEnv = null;
    for (PodSpec pod : pods.values()) {
      for (Container c : pod.getContainers()) {
        if (c.getName().equals("console")) consoleEnv = c.getEnv();
        if (c.getName().equals("key-service")) keyService = c.getEnv();
        PackagedConfig config = services.get(c.getName());
        if (config == null) continue;
        checked++;
        problems.addAll(check(config, c.getEnv()));
      }
    }
    assertEquals(3, checked, "the three services' containers");
    assertNotNull(consoleEnv, "the console's container (console.enabled is true by default)");
    problems.addAll(checkConsole(console, consoleEnv, keyService));
    return problems;
  }

  /** What is wrong with this environment for this service (empty: nothing). */
  static List<String> check(PackagedConfig config, List<EnvVar> env) {
    Set<String> needed = new TreeSet<>(DEPLOYMENT);
    boolean tls = env.stream().noneMatch(e -> e.getName().equals("TPMKMS_TLS_INSECURE"));
    if (tls) needed.addAll(TLS);
    if (config.properties.containsKey("tpmkms.audit.forward-to")) needed.add("tpmkms.audit.forward-to");
    return check(config, env, needed);
  }

  /**
   * What is wrong with the console's environment: as for a service, and its TLS as the services' is (the
   * key service's environment tells): TLS on, the CA to verify them; client certificates required, its own.
   */
  static List<String> checkConsole(PackagedConfig config, List<EnvVar> env, List<EnvVar> keyService) {
    Map<String, String> server = new LinkedHashMap<>();
    for (EnvVar e : keyService) server.put(e.getName(), e.getValue());
    Set<String> needed = new TreeSet<>();
    if (!server.containsKey("TPMKMS_TLS_INSECURE")) {
      needed.addAll(CONSOLE_TLS_CA);
      if ("required".equals(server.get("TPMKMS_TLS_SERVER_CLIENT_AUTH"))) needed.addAll(CONSOLE_TLS_CLIENT);
    }
    List<String> problems = check(config, env, needed);
    long clientFiles = env.stream().filter(e -> CONSOLE_TLS_CLIENT.contains(config.propertyOf(e.getName()).orElse(""))).count();
    if (clientFiles == 1) problems.add(config.service + ": a client certificate without its key, or a key without its certificate");
    return problems;
  }

  /** What is wrong with this environment for this component, which cannot do without {@code needed}. */
  static List<String> check(PackagedConfig config, List<EnvVar> env, Set<String> needed) {
    List<String> problems = new ArrayList<>();
    Map<String, EnvVar> byName = new LinkedHashMap<>();
    for (EnvVar e : env) {
      if (byName.put(e.getName(), e) != null) problems.add(config.service + ": " + e.getName() + " set twice");
    }
    for (EnvVar e : env) {
      if (READ_BY_THE_JVM.contains(e.getName())) continue;
      if (!config.reads(e.getName())) {
        problems.add(config.service + ": " + e.getName() + " is set but the service does not read it");
        continue;
      }
      if (e.getValue() != null) {
        config.target(e.getName()).ifPresent(p -> {
          String why = convertible(p.type(), e.getValue());
          if (why != null) problems.add(config.service + ": " + e.getName() + "=" + e.getValue() + " " + why);
        });
      }
    }
    for (PackagedConfig.Property p : config.properties.values()) {
      if (p.required() && p.root().startsWith("io.tpmkms.") && !config.applicationProperties.containsKey(p.name())) {
        needed.add(p.name());
      }
    }
    for (var placeholder : config.envPlaceholders.entrySet()) {
      if (onlyForALaptop(placeholder.getValue()) && !byName.containsKey(placeholder.getKey())) {
        problems.add(config.service + ": " + placeholder.getKey() + " is not set; its packaged default \""
            + placeholder.getValue() + "\" does not work in a pod");
      }
    }
    for (String property : needed) {
      boolean set = byName.keySet().stream().anyMatch(e -> property.equals(config.placeholderProperty.get(e))
          || config.propertyOf(e).filter(property::equals).isPresent());
      if (!set) problems.add(config.service + ": nothing sets " + property);
    }
    return problems;
  }

  /** A packaged default that only serves on a developer's machine. */
  static boolean onlyForALaptop(String defaultValue) {
    if (defaultValue == null) return false;
    return defaultValue.isEmpty() || defaultValue.contains("127.0.0.1") || defaultValue.contains("localhost")
        || defaultValue.startsWith("dev-only") || defaultValue.startsWith(".");
  }

  /** Null when the value converts to the type as SmallRye Config / Quarkus would; else why not. */
  static String convertible(Type type, String value) {
    Class<?> raw = type instanceof Class<?> c ? c : (Class<?>) ((ParameterizedType) type).getRawType();
    if (raw == List.class || raw == Set.class) {
      Type element = ((ParameterizedType) type).getActualTypeArguments()[0];
      for (String part : value.split(",")) {
        String why = convertible(element, part.trim());
        if (why != null) return why;
      }
      return null;
    }
    try {
      if (raw.isEnum()) {
        String v = value.replace("-", "").replace("_", "");
        for (Object constant : raw.getEnumConstants()) {
          if (((Enum<?>) constant).name().replace("_", "").equalsIgnoreCase(v)) return null;
        }
        return "is none of " + List.of(raw.getEnumConstants());
      }
      if (raw == Duration.class) {
        if (value.matches("\\d+|\\d+(ms|MS|[smhdSMHD])")) return null;
        Duration.parse(value.startsWith("P") || value.startsWith("p") ? value : "PT" + value);
        return null;
      }
      if (raw == int.class || raw == Integer.class) Integer.parseInt(value);
      if (raw == long.class || raw == Long.class) Long.parseLong(value);
      if ((raw == boolean.class || raw == Boolean.class)
          && !value.matches("(?i)true|false|1|0|yes|no|y|n|on|off")) {
        return "is not a boolean";
      }
      if ((raw == String.class || raw == Path.class) && value.isBlank()) return "is empty";
      return null;
    } catch (RuntimeException e) {
      return "does not convert to " + raw.getSimpleName() + ": " + e.getMessage();
    }
  }

  @Test
  void theCheck_catchesWhatItLooksFor() {
    PackagedConfig key = services.get("key-service");
    List<EnvVar> env = new ArrayList<>(List.of(
        new EnvVar("TPMKMS_GRPC_HOST", "0.0.0.0", null),
        new EnvVar("TPMKMS_CACHE_TTL", "five seconds", null),
        new EnvVar("TPMKMS_TLS_SERVER_CLIENT_AUTH", "sometimes", null),
        new EnvVar("TPMKMS_AUDIT_FORWARDTO", "audit:9091", null)));
    String problems = String.join("\n", check(key, env));
    assertTrue(problems.contains("TPMKMS_AUDIT_FORWARDTO is set but the service does not read it"), problems);
    assertTrue(problems.contains("TPMKMS_CACHE_TTL=five seconds does not convert to Duration"), problems);
    assertTrue(problems.contains("TPMKMS_TLS_SERVER_CLIENT_AUTH=sometimes is none of"), problems);
    assertTrue(problems.contains("TPMKMS_OIDC_CLIENT_SECRET is not set"), problems);
    assertTrue(problems.contains("nothing sets quarkus.datasource.password"), problems);
    assertTrue(problems.contains("nothing sets tpmkms.audit.forward-to"), problems);
    assertTrue(problems.contains("nothing sets tpmkms.tls.server.cert-file"), problems);
    assertFalse(problems.contains("TPMKMS_GRPC_HOST"), problems);
  }

  @Test
  void theConsoleCheck_catchesWhatItLooksFor() {
    List<EnvVar> tlsRequired = List.of(new EnvVar("TPMKMS_TLS_SERVER_CLIENT_AUTH", "required", null));
    List<EnvVar> env = List.of(
        new EnvVar("TPMKMS_CONSOLE_PORT", "8095", null),
        new EnvVar("TPMKMS_CONSOLE_SECURE_COOKIES", "sometimes", null),
        new EnvVar("TPMKMS_CONSOLE_KEYSERVICE", "key:9090", null),
        new EnvVar("TPMKMS_CONSOLE_POLICY_SERVICE", "policy:9092", null),
        new EnvVar("TPMKMS_CONSOLE_TLS_CA_FILE", "/etc/tpmkms/tls/ca.crt", null),
        new EnvVar("TPMKMS_CONSOLE_TLS_CERT_FILE", "/etc/tpmkms/tls/tls.crt", null),
        new EnvVar("TPMKMS_TLS_CLIENT_CA_FILE", "/etc/tpmkms/tls/ca.crt", null));
    String problems = String.join("\n", checkConsole(console, env, tlsRequired));
    assertTrue(problems.contains("TPMKMS_CONSOLE_KEYSERVICE is set but the service does not read it"), problems);
    assertTrue(problems.contains("TPMKMS_TLS_CLIENT_CA_FILE is set but the service does not read it"), problems);
    assertTrue(problems.contains("TPMKMS_CONSOLE_SECURE_COOKIES=sometimes is not a boolean"), problems);
    assertTrue(problems.contains("TPMKMS_CONSOLE_HOST is not set; its packaged default \"127.0.0.1\""), problems);
    assertTrue(problems.contains("TPMKMS_CONSOLE_KEY_SERVICE is not set"), problems);
    assertTrue(problems.contains("TPMKMS_CONSOLE_AUDIT_SERVICE is not set"), problems);
    assertTrue(problems.contains("TPMKMS_OIDC_URL is not set"), problems);
    assertTrue(problems.contains("nothing sets tpmkms.console.tls.key-file"), problems);
    assertTrue(problems.contains("a client certificate without its key"), problems);
    assertFalse(problems.contains("TPMKMS_CONSOLE_POLICY_SERVICE"), problems);
    assertFalse(problems.contains("TPMKMS_CONSOLE_PORT"), problems);
    // the services in plaintext: no TLS file is needed
    String plaintext = String.join("\n", checkConsole(console, List.of(),
        List.of(new EnvVar("TPMKMS_TLS_INSECURE", "true", null))));
    assertFalse(plaintext.contains("tpmkms.console.tls"), plaintext);
  }
}

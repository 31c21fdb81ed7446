package io.tpmkms.helm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.TemplateCommand;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/**
 * helm/tpmkms rendered by Helm's own library (helm-java): lint, then template with the required values
 * and with every example; every object parses into the fabric8 model with no unknown field, and the
 * rendered workloads keep the chart's promises (security context, probes, Services that select them).
 */
class ChartRenderTest {
  static final Path CHART = Path.of("tpmkms").toAbsolutePath();
  static final String KUBE = "1.31.0";

  static Stream<Path> valuesFiles() throws Exception {
    List<Path> files = new ArrayList<>(List.of(Path.of("src/test/resources/required.yaml")));
    try (Stream<Path> s = Files.list(CHART.resolve("examples"))) {
      s.filter(p -> p.toString().endsWith(".yaml")).sorted().forEach(files::add);
    }
    return files.stream();
  }

  static TemplateCommand template() {
    return new Helm(CHART).template().withName("rel").withNamespace("ns").withKubeVersion(KUBE);
  }

  @Test
  void lint_passes() {
    var r = new Helm(CHART).lint().call();
    assertFalse(r.isFailed(), r.getMessages().toString());
  }

  @ParameterizedTest
  @MethodSource("valuesFiles")
  void renders_strictly_and_keepsItsPromises(Path values) {
    String yaml = template().withValuesFile(values).call();
    List<HasMetadata> objects = new ArrayList<>();
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) continue;
      Object o = Serialization.unmarshal(doc);
      assertTrue(o instanceof HasMetadata, "not a Kubernetes object:\n" + doc);
      HasMetadata m = (HasMetadata) o;
      if (!m.getKind().equals("Certificate")) { // cert-manager's CRD is not in the fabric8 model
        List<String> unknown = new ArrayList<>();
        unknownFields(m, m.getKind() + "/" + m.getMetadata().getName(), unknown, new IdentityHashMap<>());
        assertEquals(List.of(), unknown, "fields the Kubernetes API does not know, in " + values);
      }
      objects.add(m);
    }
    List<PodTemplateSpec> pods = new ArrayList<>();
    for (HasMetadata m : objects) {
      if (m instanceof StatefulSet s) pods.add(s.getSpec().getTemplate());
      if (m instanceof Deployment d) pods.add(d.getSpec().getTemplate());
    }
    assertEquals(4, pods.size(), "key, policy and audit workloads, and the console's");
    for (PodTemplateSpec t : pods) {
      PodSpec spec = t.getSpec();
      assertEquals(Boolean.FALSE, spec.getAutomountServiceAccountToken());
      List<Container> all = new ArrayList<>(spec.getContainers());
      if (spec.getInitContainers() != null) all.addAll(spec.getInitContainers());
      for (Container c : all) {
        var sc = c.getSecurityContext();
        assertNotNull(sc, c.getName());
        assertEquals(Boolean.TRUE, sc.getRunAsNonRoot(), c.getName());
        assertEquals(Boolean.TRUE, sc.getReadOnlyRootFilesystem(), c.getName());
        assertEquals(Boolean.FALSE, sc.getAllowPrivilegeEscalation(), c.getName());
        assertEquals(List.of("ALL"), sc.getCapabilities().getDrop(), c.getName());
      }
      Container main = spec.getContainers().get(0);
      List<io.fabric8.kubernetes.api.model.Probe> probes =
          List.of(main.getStartupProbe(), main.getReadinessProbe(), main.getLivenessProbe());
      if (main.getName().equals("console")) {
        // no health extension in the console: its public page, on its one port
        for (var probe : probes) {
          assertEquals("/signed-out", probe.getHttpGet().getPath(), main.getName());
          assertEquals("http", probe.getHttpGet().getPort().getStrVal(), main.getName());
        }
      } else {
        for (var probe : probes) assertEquals(9190, probe.getGrpc().getPort(), main.getName());
        assertTrue(main.getEnv().stream().anyMatch(e -> e.getName().equals("TPMKMS_HEALTH_PORT")
            && e.getValue().equals("9190")), main.getName());
      }
      // the read-only root file system gets a writable /tmp
      assertTrue(main.getVolumeMounts().stream().anyMatch(m -> m.getMountPath().equals("/tmp")
          && spec.getVolumes().stream().anyMatch(v -> v.getName().equals(m.getName()) && v.getEmptyDir() != null)),
          main.getName() + ": /tmp is an emptyDir");
      for (var e : main.getEnv()) {
        // a *_FILE setting names a file (from a mounted Secret), not a secret
        boolean secretish = (e.getName().contains("PASSWORD") || e.getName().contains("SECRET"))
            && !e.getName().endsWith("_FILE");
        if (secretish) assertNotNull(e.getValueFrom(), e.getName() + " must come from a Secret");
      }
    }
    for (HasMetadata m : objects) {
      if (m instanceof Service s) {
        Map<String, String> sel = s.getSpec().getSelector();
        long matching = pods.stream().filter(t -> t.getMetadata().getLabels().entrySet().containsAll(sel.entrySet())).count();
        assertEquals(1, matching, "Service " + s.getMetadata().getName() + " selects exactly one workload");
        String component = sel.get("app.kubernetes.io/component");
        int want = switch (component) {
          case "key-service" -> 9090;
          case "audit-service" -> 9091;
          case "policy-service" -> 9092;
          case "console" -> 8095;
          default -> throw new AssertionError("a Service of an unknown component: " + component);
        };
        assertEquals(want, s.getSpec().getPorts().get(0).getPort(), s.getMetadata().getName());
      }
      if (m.getKind().equals("ConfigMap")) {
        fail("no ConfigMap outside hooks expected: " + m.getMetadata().getName());
      }
    }
  }

  /**
   * The documented paths and no others: key and audit services reach the policy service, key and
   * policy services reach the audit service, any client reaches the key service, probes reach 9190; the
   * console reaches the policy and audit services (and the key service, open to all), anyone reaches the
   * console's pages.
   */
  @Test
  void networkPolicies_allowExactlyTheDocumentedPaths() {
    java.util.Set<String> allowed = allowedPaths(template().withValuesFile(Path.of("src/test/resources/required.yaml")));
    assertEquals(new java.util.TreeSet<>(List.of("any -> key-service", "key-service -> audit-service",
        "key-service -> policy-service", "audit-service -> policy-service", "policy-service -> audit-service",
        "console -> policy-service", "console -> audit-service", "any -> console",
        "scraper -> key-service metrics", "scraper -> policy-service metrics", "scraper -> audit-service metrics")),
        allowed);
  }

  /**
   * networkPolicy.clients narrows who calls the key service: the console (labelled a client of the key
   * service) stays allowed, the other services do not gain a path; consoleClients narrows who opens the console.
   */
  @Test
  void networkPolicies_narrowed_stillAdmitTheConsole() {
    java.util.Set<String> allowed = allowedPaths(template().withValuesFile(Path.of("src/test/resources/required.yaml"))
        .set("networkPolicy.clients[0].namespaceSelector.matchLabels.tpmkms\\.io/client", "true")
        .set("networkPolicy.consoleClients[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name", "ingress")
        .set("metrics.enabled", "false"));
    assertEquals(new java.util.TreeSet<>(List.of("console -> key-service", "key-service -> audit-service",
        "key-service -> policy-service", "audit-service -> policy-service", "policy-service -> audit-service",
        "console -> policy-service", "console -> audit-service", "peers -> key-service", "peers -> console")),
        allowed);
  }

  /**
   * "source -> target" for every path the rendered NetworkPolicies open: a workload of the chart whose pod
   * labels a podSelector peer matches, "any" for a rule without peers, "peers" for other peers (namespaces).
   */
  static java.util.Set<String> allowedPaths(TemplateCommand command) {
    String yaml = command.call();
    Map<String, Map<String, String>> podLabels = new java.util.HashMap<>();
    Map<String, io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy> policies = new java.util.HashMap<>();
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) continue;
      Object o = Serialization.unmarshal(doc);
      if (o instanceof StatefulSet s) podLabels.put("key-service", s.getSpec().getTemplate().getMetadata().getLabels());
      if (o instanceof Deployment d) {
        podLabels.put(d.getSpec().getTemplate().getMetadata().getLabels().get("app.kubernetes.io/component"),
            d.getSpec().getTemplate().getMetadata().getLabels());
      }
      if (o instanceof io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy np) {
        policies.put(np.getSpec().getPodSelector().getMatchLabels().get("app.kubernetes.io/component"), np);
      }
    }
    assertEquals(java.util.Set.of("key-service", "policy-service", "audit-service", "console"), policies.keySet());
    Map<String, Integer> port = Map.of("key-service", 9090, "policy-service", 9092, "audit-service", 9091,
        "console", 8095);
    Map<String, Integer> metricsPort = Map.of("key-service", 8090, "policy-service", 8092, "audit-service", 8091);
    java.util.Set<String> allowed = new java.util.TreeSet<>();
    for (var target : policies.entrySet()) {
      var spec = target.getValue().getSpec();
      assertEquals(List.of("Ingress"), spec.getPolicyTypes());
      assertEquals(podLabels.get(target.getKey()).entrySet().containsAll(spec.getPodSelector().getMatchLabels().entrySet()),
          true, "the policy selects its own pods");
      for (var rule : spec.getIngress()) {
        int p = rule.getPorts().get(0).getPort().getIntVal();
        if (p == 9190) {
          assertTrue(rule.getFrom() == null || rule.getFrom().isEmpty(), "probe port open to the kubelet");
          continue;
        }
        if (Integer.valueOf(p).equals(metricsPort.get(target.getKey()))) {
          // metrics.from is empty in the required values: any source may scrape /q/metrics
          assertTrue(rule.getFrom() == null || rule.getFrom().isEmpty(), "metrics port open to the scraper");
          allowed.add("scraper -> " + target.getKey() + " metrics");
          continue;
        }
        assertEquals(port.get(target.getKey()), p, target.getKey());
        if (rule.getFrom() == null || rule.getFrom().isEmpty()) {
          allowed.add("any -> " + target.getKey());
          continue;
        }
        for (var peer : rule.getFrom()) {
          if (peer.getNamespaceSelector() != null || peer.getPodSelector() == null) {
            allowed.add("peers -> " + target.getKey());
            continue;
          }
          for (var source : podLabels.entrySet()) {
            if (source.getValue().entrySet().containsAll(peer.getPodSelector().getMatchLabels().entrySet())) {
              allowed.add(source.getKey() + " -> " + target.getKey());
            }
          }
        }
      }
    }
    return allowed;
  }

  /**
   * The chart with its hooks (realm import, helm test pod): helm template leaves hook objects out, so a
   * copy of the chart without the hook annotations is rendered.
   */
  static List<HasMetadata> renderWithHooks(Path values) throws Exception {
    Path copy = Files.createTempDirectory("tpmkms-chart");
    try (Stream<Path> files = Files.walk(CHART)) {
      for (Path f : files.toList()) {
        Path target = copy.resolve(CHART.relativize(f).toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(target);
        } else {
          String text = Files.readString(f);
          if (f.toString().contains("/templates/")) text = text.replaceAll("(?m)^\\s*helm\\.sh/hook[a-z-]*:.*\\n", "");
          Files.writeString(target, text);
        }
      }
    }
    String yaml;
    try {
      yaml = new Helm(copy).template().withName("rel").withNamespace("ns").withKubeVersion(KUBE)
          .withValuesFile(values).call();
    } finally {
      try (Stream<Path> files = Files.walk(copy)) {
        for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(f);
      }
    }
    List<HasMetadata> objects = new ArrayList<>();
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) continue;
      objects.add((HasMetadata) Serialization.unmarshal(doc));
    }
    return objects;
  }

  /**
   * Every Secret a pod names (env secretKeyRef, secret volume), hooks included, is one the chart's
   * Certificates make or one the values name (an existing Secret the operator created): none is
   * assumed to exist. And the hook objects parse as strictly as the rest.
   */
  @ParameterizedTest
  @MethodSource("valuesFiles")
  void everySecretReferenced_isMadeByTheChartOrNamedInTheValues(Path values) throws Exception {
    List<HasMetadata> objects = renderWithHooks(values);
    java.util.Set<String> named = new java.util.HashSet<>();
    collectStrings(Serialization.unmarshal(Files.readString(values), Map.class), named);
    java.util.Set<String> made = new java.util.HashSet<>();
    List<PodSpec> pods = new ArrayList<>();
    for (HasMetadata m : objects) {
      if (m instanceof io.fabric8.kubernetes.api.model.GenericKubernetesResource r && r.getKind().equals("Certificate")) {
        made.add((String) ((Map<?, ?>) r.getAdditionalProperties().get("spec")).get("secretName"));
        continue;
      }
      List<String> unknown = new ArrayList<>();
      unknownFields(m, m.getKind() + "/" + m.getMetadata().getName(), unknown, new IdentityHashMap<>());
      assertEquals(List.of(), unknown, "fields the Kubernetes API does not know, in " + values);
      if (m instanceof StatefulSet s) pods.add(s.getSpec().getTemplate().getSpec());
      if (m instanceof Deployment d) pods.add(d.getSpec().getTemplate().getSpec());
      if (m instanceof io.fabric8.kubernetes.api.model.batch.v1.Job j) pods.add(j.getSpec().getTemplate().getSpec());
      if (m instanceof io.fabric8.kubernetes.api.model.Pod p) pods.add(p.getSpec());
    }
    java.util.Set<String> referenced = new java.util.TreeSet<>();
    for (PodSpec spec : pods) {
      for (var v : spec.getVolumes() == null ? List.<io.fabric8.kubernetes.api.model.Volume>of() : spec.getVolumes()) {
        if (v.getSecret() != null) referenced.add(v.getSecret().getSecretName());
      }
      List<Container> all = new ArrayList<>(spec.getContainers());
      if (spec.getInitContainers() != null) all.addAll(spec.getInitContainers());
      for (Container c : all) {
        for (var e : c.getEnv() == null ? List.<io.fabric8.kubernetes.api.model.EnvVar>of() : c.getEnv()) {
          if (e.getValueFrom() != null && e.getValueFrom().getSecretKeyRef() != null) {
            referenced.add(e.getValueFrom().getSecretKeyRef().getName());
          }
        }
      }
    }
    assertTrue(referenced.size() >= 3, "the pods reference Secrets: " + referenced);
    for (String secret : referenced) {
      assertTrue(made.contains(secret) || named.contains(secret),
          values + ": Secret " + secret + " is neither made by a Certificate " + made + " nor named in the values");
    }
  }

  private static void collectStrings(Object o, java.util.Set<String> out) {
    if (o instanceof Map<?, ?> m) m.values().forEach(v -> collectStrings(v, out));
    else if (o instanceof Collection<?> c) c.forEach(v -> collectStrings(v, out));
    else if (o instanceof String s) out.add(s);
  }

  static final Path REQUIRED = Path.of("src/test/resources/required.yaml");

  static List<HasMetadata> objects(TemplateCommand command) {
    List<HasMetadata> objects = new ArrayList<>();
    for (String doc : command.call().split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) continue;
      objects.add((HasMetadata) Serialization.unmarshal(doc));
    }
    return objects;
  }

  static <T extends HasMetadata> T named(List<HasMetadata> objects, Class<T> type, String name) {
    List<T> found = objects.stream().filter(type::isInstance).map(type::cast)
        .filter(o -> o.getMetadata().getName().equals(name)).toList();
    assertEquals(1, found.size(), type.getSimpleName() + " " + name + " in " + objects.stream()
        .map(o -> o.getKind() + "/" + o.getMetadata().getName()).toList());
    return found.get(0);
  }

  /** The chart's appVersion: the images' default tag. */
  static String appVersion() {
    try {
      var m = java.util.regex.Pattern.compile("(?m)^appVersion:\\s*\"?([^\"\\s]+)\"?").matcher(Files.readString(CHART.resolve("Chart.yaml")));
      assertTrue(m.find(), "appVersion in Chart.yaml");
      return m.group(1);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static Map<String, String> env(Container c) {
    Map<String, String> env = new java.util.LinkedHashMap<>();
    for (var e : c.getEnv()) assertNull(env.put(e.getName(), e.getValue()), e.getName() + " set twice");
    return env;
  }

  /**
   * The console with the required values: a Deployment like the services' (one replica, non-root, read-only
   * root, its own ServiceAccount), the environment its application.properties reads (listening on the pod's
   * address, the services' in-cluster addresses, the realm and its client, secure cookies, mutual TLS with its
   * own cert-manager client certificate), a ClusterIP Service on 8095 named http, a NetworkPolicy and a PDB.
   */
  @Test
  void console_rendersLikeTheServices_withTheEnvironmentItReads() {
    List<HasMetadata> objects = objects(template().withValuesFile(REQUIRED));
    Deployment d = named(objects, Deployment.class, "rel-tpmkms-console");
    assertEquals(1, d.getSpec().getReplicas(), "sessions live in the process: one replica by default");
    var pod = d.getSpec().getTemplate();
    assertEquals("console", pod.getMetadata().getLabels().get("app.kubernetes.io/component"));
    for (String svc : List.of("key", "policy", "audit")) {
      assertEquals("true", pod.getMetadata().getLabels().get("tpmkms.io/client-of-" + svc), svc);
    }
    PodSpec spec = pod.getSpec();
    assertEquals("rel-tpmkms-console", spec.getServiceAccountName());
    assertEquals(10001L, spec.getSecurityContext().getRunAsUser());
    assertEquals(1, spec.getContainers().size());
    Container c = spec.getContainers().get(0);
    assertEquals("console", c.getName());
    assertEquals("tpmkms/admin-console:" + appVersion(), c.getImage(), "tagged as the services are");
    assertEquals(List.of(8095), c.getPorts().stream().map(p -> p.getContainerPort()).toList());
    assertEquals("http", c.getPorts().get(0).getName());
    assertEquals(Map.ofEntries(
        Map.entry("TPMKMS_CONSOLE_HOST", "0.0.0.0"),
        Map.entry("TPMKMS_CONSOLE_PORT", "8095"),
        Map.entry("TPMKMS_OIDC_URL", "https://sso.example.com/realms/tpmkms"),
        Map.entry("TPMKMS_CONSOLE_CLIENT_ID", "tpmkms-console"),
        Map.entry("TPMKMS_CONSOLE_SECURE_COOKIES", "true"),
        Map.entry("TPMKMS_CONSOLE_KEY_SERVICE", "rel-tpmkms-key-service.ns.svc.cluster.local:9090"),
        Map.entry("TPMKMS_CONSOLE_POLICY_SERVICE", "rel-tpmkms-policy-service.ns.svc.cluster.local:9092"),
        Map.entry("TPMKMS_CONSOLE_AUDIT_SERVICE", "rel-tpmkms-audit-service.ns.svc.cluster.local:9091"),
        Map.entry("TPMKMS_CONSOLE_TLS_CA_FILE", "/etc/tpmkms/tls/ca.crt"),
        Map.entry("TPMKMS_CONSOLE_TLS_CERT_FILE", "/etc/tpmkms/tls/tls.crt"),
        Map.entry("TPMKMS_CONSOLE_TLS_KEY_FILE", "/etc/tpmkms/tls/tls.key"),
        Map.entry("JAVA_TOOL_OPTIONS", "-XX:MaxRAMPercentage=75.0 -Djava.io.tmpdir=/tmp")), env(c));
    var tls = spec.getVolumes().stream().filter(v -> v.getName().equals("tls")).findFirst().orElseThrow();
    assertEquals("rel-tpmkms-console-tls", tls.getSecret().getSecretName());
    assertTrue(c.getVolumeMounts().stream().anyMatch(m -> m.getName().equals("tls")
        && m.getMountPath().equals("/etc/tpmkms/tls") && Boolean.TRUE.equals(m.getReadOnly())));
    // its own client certificate, made by cert-manager: client auth only (it serves no TLS)
    var cert = objects.stream().filter(o -> o instanceof io.fabric8.kubernetes.api.model.GenericKubernetesResource
        && o.getKind().equals("Certificate") && o.getMetadata().getName().equals("rel-tpmkms-console"))
        .map(o -> (io.fabric8.kubernetes.api.model.GenericKubernetesResource) o).findFirst().orElseThrow();
    Map<?, ?> certSpec = (Map<?, ?>) cert.getAdditionalProperties().get("spec");
    assertEquals("rel-tpmkms-console-tls", certSpec.get("secretName"));
    assertEquals(List.of("digital signature", "client auth"), certSpec.get("usages"));
    assertNull(certSpec.get("dnsNames"));

    Service svc = named(objects, Service.class, "rel-tpmkms-console");
    assertEquals("ClusterIP", svc.getSpec().getType());
    assertEquals(1, svc.getSpec().getPorts().size());
    assertEquals("http", svc.getSpec().getPorts().get(0).getName());
    assertEquals(8095, svc.getSpec().getPorts().get(0).getPort());
    assertEquals("http", svc.getSpec().getPorts().get(0).getTargetPort().getStrVal());
    assertTrue(pod.getMetadata().getLabels().entrySet().containsAll(svc.getSpec().getSelector().entrySet()));

    var np = named(objects, io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy.class, "rel-tpmkms-console");
    assertEquals(1, np.getSpec().getIngress().size());
    assertEquals(8095, np.getSpec().getIngress().get(0).getPorts().get(0).getPort().getIntVal());
    named(objects, io.fabric8.kubernetes.api.model.ServiceAccount.class, "rel-tpmkms-console");
    named(objects, io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget.class, "rel-tpmkms-console");
  }

  /** console.enabled=false: nothing of the console is rendered, and the services are as before. */
  @Test
  void consoleDisabled_rendersNothingOfIt() {
    List<HasMetadata> objects = objects(template().withValuesFile(REQUIRED).set("console.enabled", "false"));
    List<String> console = objects.stream().filter(o -> o.getMetadata().getName().contains("console")
        || "console".equals(o.getMetadata().getLabels().get("app.kubernetes.io/component")))
        .map(o -> o.getKind() + "/" + o.getMetadata().getName()).toList();
    assertEquals(List.of(), console);
    assertEquals(3, objects.stream().filter(o -> o instanceof Deployment || o instanceof StatefulSet).count());
    assertEquals(4, objects.stream().filter(o -> o.getKind().equals("Certificate")).count(),
        "the three services' and the helm test's");
    assertEquals(3, objects.stream().filter(o -> o instanceof io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy).count());
    // the chart's defaults make it: a template that ignored console.enabled would leave it in
    assertTrue(objects(template().withValuesFile(REQUIRED)).stream()
        .anyMatch(o -> o.getMetadata().getName().equals("rel-tpmkms-console")));
  }

  /** The console's own values, and the chart's TLS variants as the console sees them. */
  @Test
  void console_valuesAndTlsVariants() {
    Container c = named(objects(template().withValuesFile(REQUIRED)
        .set("console.oidc.issuerUrl", "https://login.example.com/realms/tpmkms")
        .set("console.oidc.clientId", "kms-console")
        .set("console.secureCookies", "false")
        .set("console.replicas", "2")
        .set("console.ekCa.existingSecret", "tpm-vendors")
        .set("console.image.repository", "team/console")
        .set("image.registry", "registry.example.com")),
        Deployment.class, "rel-tpmkms-console").getSpec().getTemplate().getSpec().getContainers().get(0);
    Map<String, String> env = env(c);
    assertEquals("https://login.example.com/realms/tpmkms", env.get("TPMKMS_OIDC_URL"));
    assertEquals("kms-console", env.get("TPMKMS_CONSOLE_CLIENT_ID"));
    assertEquals("false", env.get("TPMKMS_CONSOLE_SECURE_COOKIES"));
    assertEquals("/etc/tpmkms/ek-ca/ek-ca.pem", env.get("TPMKMS_CONSOLE_EK_CA_FILE"));
    assertEquals("registry.example.com/team/console:" + appVersion(), c.getImage());
    assertTrue(c.getVolumeMounts().stream().anyMatch(m -> m.getName().equals("ek-ca") && m.getMountPath().equals("/etc/tpmkms/ek-ca")));

    // TLS off: no TLS file, no tls volume
    Deployment plain = named(objects(template().withValuesFile(REQUIRED).set("tls.enabled", "false")
        .set("tls.allowInsecure", "true")), Deployment.class, "rel-tpmkms-console");
    assertTrue(env(plain.getSpec().getTemplate().getSpec().getContainers().get(0)).keySet().stream()
        .noneMatch(k -> k.startsWith("TPMKMS_CONSOLE_TLS_")));
    assertTrue(plain.getSpec().getTemplate().getSpec().getVolumes().stream().noneMatch(v -> v.getName().equals("tls")));

    // existing Secrets without one for the console: the CA alone, from the key service's Secret
    var existing = template().withValuesFile(REQUIRED).set("tls.source", "existingSecrets")
        .set("tls.existingSecrets.keyService", "k-tls").set("tls.existingSecrets.policyService", "p-tls")
        .set("tls.existingSecrets.auditService", "a-tls");
    PodSpec caOnly = named(objects(existing), Deployment.class, "rel-tpmkms-console").getSpec().getTemplate().getSpec();
    Map<String, String> caOnlyEnv = env(caOnly.getContainers().get(0));
    assertEquals("/etc/tpmkms/tls/ca.crt", caOnlyEnv.get("TPMKMS_CONSOLE_TLS_CA_FILE"));
    assertFalse(caOnlyEnv.containsKey("TPMKMS_CONSOLE_TLS_CERT_FILE") || caOnlyEnv.containsKey("TPMKMS_CONSOLE_TLS_KEY_FILE"));
    var tls = caOnly.getVolumes().stream().filter(v -> v.getName().equals("tls")).findFirst().orElseThrow().getSecret();
    assertEquals("k-tls", tls.getSecretName());
    assertEquals(List.of("ca.crt"), tls.getItems().stream().map(i -> i.getKey()).toList(), "never the service's key");
    // ... which the services cannot accept when they require client certificates
    Exception e = assertThrows(Exception.class, () -> existing.set("tls.clientAuth", "required").call());
    assertTrue(e.getMessage().contains("tls.existingSecrets.console"), e.getMessage());
    PodSpec own = named(objects(existing.set("tls.existingSecrets.console", "c-tls")), Deployment.class,
        "rel-tpmkms-console").getSpec().getTemplate().getSpec();
    assertEquals("c-tls", own.getVolumes().stream().filter(v -> v.getName().equals("tls")).findFirst().orElseThrow()
        .getSecret().getSecretName());
    assertEquals("/etc/tpmkms/tls/tls.crt", env(own.getContainers().get(0)).get("TPMKMS_CONSOLE_TLS_CERT_FILE"));
  }

  /** NOTES.txt (a client-only dry-run install prints it) tells how to reach the console, and only when there is one. */
  @Test
  void notes_tellHowToReachTheConsole() {
    String notes = notes(false);
    assertTrue(notes.contains("kubectl -n ns port-forward svc/rel-tpmkms-console 8095:8095"), notes);
    assertTrue(notes.contains("http://localhost:8095"), notes);
    String without = notes(true);
    assertTrue(without.contains("port-forward svc/rel-tpmkms-key-service"), without);
    assertFalse(without.toLowerCase(java.util.Locale.ROOT).contains("console"), without);
  }

  static String notes(boolean consoleDisabled) {
    var install = new Helm(CHART).install().withName("rel").withNamespace("ns").clientOnly().dryRun()
        .withKubeVersion(KUBE).withValuesFile(REQUIRED);
    if (consoleDisabled) install = install.set("console.enabled", "false");
    String output = install.call().getOutput();
    assertTrue(output.contains("NOTES:"), output);
    return output.substring(output.indexOf("NOTES:"));
  }

  @Test
  void consoleValues_checkedByTheSchema() {
    Exception unknown = assertThrows(Exception.class, () -> template().withValuesFile(REQUIRED)
        .set("console.replica", "2").call());
    assertTrue(unknown.getMessage().contains("replica"), unknown.getMessage());
    Exception zero = assertThrows(Exception.class, () -> template().withValuesFile(REQUIRED)
        .set("console.replicas", "0").call());
    assertTrue(zero.getMessage().contains("/console/replicas"), zero.getMessage());
    Exception issuer = assertThrows(Exception.class, () -> template().withValuesFile(REQUIRED)
        .set("console.oidc.issuerUrl", "sso.example.com").call());
    assertTrue(issuer.getMessage().contains("/console/oidc/issuerUrl"), issuer.getMessage());
  }

  /**
   * ADR 0034: the key and audit services get the PCRs their sealed root seeds are bound to and, from a
   * Secret mounted outside their data volume, the operator secret; the schema refuses a PCR above 23.
   */
  @Test
  void rootSeal_pcrsAndTheOperatorSecret_forTheKeyAndAuditServices() {
    String yaml = template().withValuesFile(Path.of("src/test/resources/required.yaml"))
        .withValuesFile(Path.of("src/test/resources/root-seal.yaml")).call();
    int seen = 0;
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (!doc.contains("kind: StatefulSet") && !doc.contains("kind: Deployment")) continue;
      PodSpec spec = podSpec(Serialization.unmarshal(doc));
      Container main = spec.getContainers().get(0);
      boolean tpmService = main.getName().equals("key-service") || main.getName().equals("audit-service");
      Map<String, String> env = new java.util.HashMap<>();
      main.getEnv().forEach(e -> env.put(e.getName(), e.getValue()));
      if (!tpmService) {
        assertFalse(env.containsKey("TPMKMS_BACKEND_TPM_ROOT_SEAL_PCRS"), main.getName());
        continue;
      }
      seen++;
      assertEquals("7,16", env.get("TPMKMS_BACKEND_TPM_ROOT_SEAL_PCRS"), main.getName());
      assertEquals("/etc/tpmkms/root-secret/root-secret", env.get("TPMKMS_BACKEND_TPM_ROOT_SECRET_FILE"));
      var mount = main.getVolumeMounts().stream().filter(m -> m.getName().equals("root-secret")).findFirst()
          .orElseThrow();
      assertEquals("/etc/tpmkms/root-secret", mount.getMountPath());
      assertEquals(Boolean.TRUE, mount.getReadOnly());
      assertFalse(mount.getMountPath().startsWith("/var/lib/tpmkms"), "outside the data volume");
      var volume = spec.getVolumes().stream().filter(v -> v.getName().equals("root-secret")).findFirst().orElseThrow();
      assertEquals("root-secret-s", volume.getSecret().getSecretName());
      // the recovery key (ADR 0034): its public half always, the private half only while recovering
      assertEquals("/etc/tpmkms/root-recovery/recovery.pub.pem", env.get("TPMKMS_BACKEND_TPM_ROOT_RECOVERY_PUBLIC_KEY_FILE"));
      assertEquals("/etc/tpmkms/root-recovery/recovery.pem", env.get("TPMKMS_BACKEND_TPM_ROOT_RECOVERY_KEY_FILE"));
      var recovery = spec.getVolumes().stream().filter(v -> v.getName().equals("root-recovery")).findFirst().orElseThrow();
      assertEquals("root-recovery-s", recovery.getSecret().getSecretName());
      assertEquals(java.util.List.of("recovery.pub.pem", "recovery.pem"),
          recovery.getSecret().getItems().stream().map(i -> i.getPath()).toList());
      assertTrue(main.getVolumeMounts().stream().anyMatch(m -> m.getName().equals("root-recovery")
          && m.getMountPath().equals("/etc/tpmkms/root-recovery") && Boolean.TRUE.equals(m.getReadOnly())));
    }
    String notRecovering = template().withValuesFile(Path.of("src/test/resources/required.yaml"))
        .withValuesFile(Path.of("src/test/resources/root-seal.yaml")).set("tpm.rootSeal.recovery.recover", "false").call();
    assertTrue(notRecovering.contains("TPMKMS_BACKEND_TPM_ROOT_RECOVERY_PUBLIC_KEY_FILE"));
    assertFalse(notRecovering.contains("TPMKMS_BACKEND_TPM_ROOT_RECOVERY_KEY_FILE"), "no private key unless recovering");
    assertFalse(notRecovering.contains("path: recovery.pem"));
    assertEquals(2, seen, "the key and the audit service");
    var e = assertThrows(Exception.class, () -> template().withValuesFile(Path.of("src/test/resources/required.yaml"))
        .set("tpm.rootSeal.pcrs", "24").call());
    assertTrue(e.getMessage().contains("/tpm/rootSeal/pcrs"), e.getMessage());
  }

  /** ADR 0038: the key service reads the TPM vendors' CA bundle from a ConfigMap for node enrollment. */
  @Test
  void nodeAttestation_ekCaBundleFromAConfigMap_onlyWhenSet() {
    String none = template().withValuesFile(Path.of("src/test/resources/required.yaml")).call();
    assertFalse(none.contains("TPMKMS_ATTESTATION_EK_CA_FILE"), "no bundle, no enrollment");
    String yaml = template().withValuesFile(Path.of("src/test/resources/required.yaml"))
        .set("keyService.nodeAttestation.ekCaConfigMap", "tpm-vendors").set("keyService.nodeAttestation.freshness", "10m")
        .call();
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (!doc.contains("kind: StatefulSet") && !doc.contains("kind: Deployment")) continue;
      PodSpec spec = podSpec(Serialization.unmarshal(doc));
      Container main = spec.getContainers().get(0);
      Map<String, String> env = new java.util.HashMap<>();
      main.getEnv().forEach(e -> env.put(e.getName(), e.getValue()));
      if (!main.getName().equals("key-service")) {
        assertFalse(env.containsKey("TPMKMS_ATTESTATION_EK_CA_FILE"), main.getName());
        continue;
      }
      assertEquals("/etc/tpmkms/ek-ca/ek-ca.pem", env.get("TPMKMS_ATTESTATION_EK_CA_FILE"));
      assertEquals("10m", env.get("TPMKMS_ATTESTATION_FRESHNESS"));
      var volume = spec.getVolumes().stream().filter(v -> v.getName().equals("ek-ca")).findFirst().orElseThrow();
      assertEquals("tpm-vendors", volume.getConfigMap().getName());
      assertEquals("ek-ca.pem", volume.getConfigMap().getItems().get(0).getPath());
      assertTrue(main.getVolumeMounts().stream().anyMatch(m -> m.getName().equals("ek-ca")
          && m.getMountPath().equals("/etc/tpmkms/ek-ca") && Boolean.TRUE.equals(m.getReadOnly())));
    }
    var e = assertThrows(Exception.class, () -> template().withValuesFile(Path.of("src/test/resources/required.yaml"))
        .set("keyService.nodeAttestation.freshness", "soon").call());
    assertTrue(e.getMessage().contains("freshness"), e.getMessage());
  }

  private static PodSpec podSpec(Object o) {
    if (o instanceof StatefulSet s) return s.getSpec().getTemplate().getSpec();
    return ((Deployment) o).getSpec().getTemplate().getSpec();
  }

  @Test
  void missingRequiredValue_failsWithItsName() {
    Exception e = assertThrows(Exception.class, () -> template().call());
    assertTrue(e.getMessage().contains("is required"), e.getMessage());
  }

  @Test
  void severalKeyReplicasWithoutASharedSeed_refused() {
    Exception e = assertThrows(Exception.class, () -> template()
        .withValuesFile(Path.of("src/test/resources/required.yaml")).set("keyService.replicas", 3).call());
    assertTrue(e.getMessage().contains("keyService.rootSeed.existingSecret"), e.getMessage());
  }

  @Test
  void wrongValue_failsWithTheSchemasMessage() {
    Exception e = assertThrows(Exception.class, () -> template()
        .withValuesFile(Path.of("src/test/resources/required.yaml")).set("tpm.mode", "hardware").call());
    assertTrue(e.getMessage().contains("values don't meet the specifications of the schema")
        && e.getMessage().contains("at '/tpm/mode': value must be one of 'none', 'device', 'swtpm'"), e.getMessage());
    Exception unknown = assertThrows(Exception.class, () -> template()
        .withValuesFile(Path.of("src/test/resources/required.yaml")).set("keyService.replica", 3).call());
    assertTrue(unknown.getMessage().contains("replica"), unknown.getMessage());
  }

  private static void fail(String message) {
    org.junit.jupiter.api.Assertions.fail(message);
  }

  /** Every non-empty additionalProperties under a fabric8 model object: a field the API would reject. */
  static void unknownFields(Object o, String path, List<String> out, IdentityHashMap<Object, Boolean> seen) {
    if (o == null || seen.put(o, true) != null) return;
    if (o instanceof Collection<?> c) {
      int i = 0;
      for (Object e : c) unknownFields(e, path + "[" + i++ + "]", out, seen);
      return;
    }
    if (o instanceof Map<?, ?> m) {
      for (var e : m.entrySet()) unknownFields(e.getValue(), path + "." + e.getKey(), out, seen);
      return;
    }
    if (!o.getClass().getName().startsWith("io.fabric8.kubernetes.api.model")) return;
    for (Method g : o.getClass().getMethods()) {
      if (g.getParameterCount() != 0 || !g.getName().startsWith("get") || g.getName().equals("getClass")) continue;
      try {
        Object v = g.invoke(o);
        if (g.getName().equals("getAdditionalProperties")) {
          if (v instanceof Map<?, ?> extra && !extra.isEmpty()) out.add(path + " " + extra.keySet());
        } else {
          unknownFields(v, path + "." + g.getName().substring(3), out, seen);
        }
      } catch (ReflectiveOperationException ignored) {
        // a getter that needs state: nothing to walk
      }
    }
  }
}

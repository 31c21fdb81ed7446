package io.tpmkms.helm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
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
    assertEquals(3, pods.size(), "key, policy and audit workloads");
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
      for (var probe : List.of(main.getStartupProbe(), main.getReadinessProbe(), main.getLivenessProbe())) {
        assertEquals(9190, probe.getGrpc().getPort(), main.getName());
      }
      assertTrue(main.getEnv().stream().anyMatch(e -> e.getName().equals("TPMKMS_HEALTH_PORT")
          && e.getValue().equals("9190")), main.getName());
      for (var e : main.getEnv()) {
        boolean secretish = e.getName().contains("PASSWORD") || e.getName().contains("SECRET");
        if (secretish) assertNotNull(e.getValueFrom(), e.getName() + " must come from a Secret");
      }
    }
    for (HasMetadata m : objects) {
      if (m instanceof Service s) {
        Map<String, String> sel = s.getSpec().getSelector();
        long matching = pods.stream().filter(t -> t.getMetadata().getLabels().entrySet().containsAll(sel.entrySet())).count();
        assertEquals(1, matching, "Service " + s.getMetadata().getName() + " selects exactly one workload");
        String component = sel.get("app.kubernetes.io/component");
        int want = switch (component) { case "key-service" -> 9090; case "audit-service" -> 9091; default -> 9092; };
        assertEquals(want, s.getSpec().getPorts().get(0).getPort(), s.getMetadata().getName());
      }
      if (m.getKind().equals("ConfigMap")) {
        fail("no ConfigMap outside hooks expected: " + m.getMetadata().getName());
      }
    }
  }

  /**
   * The documented paths and no others: key and audit services reach the policy service, key and
   * policy services reach the audit service, any client reaches the key service, probes reach 9190.
   */
  @Test
  void networkPolicies_allowExactlyTheDocumentedPaths() {
    String yaml = template().withValuesFile(Path.of("src/test/resources/required.yaml")).call();
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
    assertEquals(java.util.Set.of("key-service", "policy-service", "audit-service"), policies.keySet());
    Map<String, Integer> port = Map.of("key-service", 9090, "policy-service", 9092, "audit-service", 9091);
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
        if (p == metricsPort.get(target.getKey())) {
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
          for (var source : podLabels.entrySet()) {
            if (peer.getNamespaceSelector() == null && peer.getPodSelector() != null
                && source.getValue().entrySet().containsAll(peer.getPodSelector().getMatchLabels().entrySet())) {
              allowed.add(source.getKey() + " -> " + target.getKey());
            }
          }
        }
      }
    }
    assertEquals(new java.util.TreeSet<>(List.of("any -> key-service", "key-service -> audit-service",
        "key-service -> policy-service", "audit-service -> policy-service", "policy-service -> audit-service",
        "scraper -> key-service metrics", "scraper -> policy-service metrics", "scraper -> audit-service metrics")),
        allowed);
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

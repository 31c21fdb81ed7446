package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.images.Images;
import io.tpmkms.images.RootFs;
import io.tpmkms.tls.DevPki;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Render and run: helm/tpmkms rendered by Helm's own library with examples/dev-swtpm.yaml (an swtpm
 * sidecar, TLS from cert-manager Certificates, the realm imported by the chart's Job), then every
 * rendered workload run on this machine by {@link PodRunner} from our image tarballs, with exactly its
 * command, arguments, environment and volumes, against a real PostgreSQL (one database per service) and
 * a Keycloak of its own. This test plays the cluster's other parts: cert-manager (issues each
 * Certificate's dnsNames from a test CA into its Secret), the operator (the Secrets the values name,
 * the helm test's OAuth client) and DNS (the Services' names and the database's resolve to loopback).
 * Then the chart's own helm test pod runs (login, health, encrypt/decrypt round trip), and the CLI, from
 * the same pod spec, runs a key lifecycle on the TPM and verifies the audit chain: proof that the
 * configuration the chart writes is what the services understand. The admin console's pod runs too (its
 * httpGet probes awaited), and a person signs in to it through Keycloak's login form and sees the three
 * services SERVING and their own roles: proof that its environment (realm, client, the services' addresses,
 * its mutual TLS client certificate) is what the console understands.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class HelmRenderAndRunIT {
  static final String RELEASE = "kms";
  static final String NAMESPACE = "tpmkms";
  static final ObjectMapper JSON = new ObjectMapper();
  static final SecureRandom RANDOM = new SecureRandom();

  static Path work;
  static EmbeddedPostgres postgres;
  static Keycloak keycloak;
  static Path keycloakDir;
  static PodRunner runner;
  static final Map<String, Map<String, byte[]>> secrets = new HashMap<>();
  static final Map<String, Map<String, String>> configMaps = new HashMap<>();
  static final List<HasMetadata> objects = new ArrayList<>();
  static PodRunner.Pod testPod;
  static Pod testPodObject;
  static String realmImportOutput;

  @BeforeAll
  static void install() throws Exception {
    assumeTrue(RootFs.isRoot() && Files.isExecutable(Path.of(RootFs.UNSHARE)),
        "render-and-run chroots into the images' root file systems: it needs root and unshare (CI has both)");
    work = Images.workDir("render-and-run");

    postgres = EmbeddedPostgres.builder().start();
    String dbPassword = random();
    try (Connection c = postgres.getPostgresDatabase().getConnection(); Statement s = c.createStatement()) {
      s.execute("CREATE ROLE tpmkms LOGIN PASSWORD '" + dbPassword + "'");
      for (String db : List.of("tpmkms_keys", "tpmkms_policy", "tpmkms_audit")) {
        s.execute("CREATE DATABASE " + db + " OWNER tpmkms");
      }
    }
    keycloakDir = Files.createTempDirectory("tpmkms-helm-keycloak");
    keycloak = Keycloak.start(keycloakDir);

    // the Secrets an operator creates before installing (the values name them)
    secrets.put("tpmkms-db", Map.of("username", bytes("tpmkms"), "password", bytes(dbPassword)));
    secrets.put("tpmkms-oidc", Map.of("key-service", bytes(random()), "policy-service", bytes(random()),
        "audit-service", bytes(random())));
    secrets.put("keycloak-admin", Map.of("username", bytes(Keycloak.ADMIN_USERNAME),
        "password", Files.readAllBytes(keycloak.instanceDir().resolve("admin-password"))));
    secrets.put("tpmkms-helm-test", Map.of("client-id", bytes("tpmkms-helm-test"), "client-secret", bytes(random())));

    render();
    actAsCertManager();
    Path hosts = hostsFile();
    runner = new PodRunner(work, secrets, configMaps, hosts);

    runRealmImportJob();
    createHelmTestClient();
    startWorkloads();
  }

  @AfterAll
  static void uninstall() throws Exception {
    if (runner != null) runner.close();
    if (keycloak != null) keycloak.close();
    if (keycloakDir != null) Images.deleteTree(keycloakDir);
    if (postgres != null) postgres.close();
    if (work != null) {
      // the unpacked images (~1 GiB); the logs, the rendered manifests and the pods' volumes stay
      Images.deleteUnpacked(work.resolve("roots"));
      try (var children = Files.list(work)) {
        for (Path child : children.filter(c -> c.getFileName().toString().endsWith("-layout")).toList()) {
          Images.deleteTree(child);
        }
      }
    }
  }

  /** The chart, hooks included (helm template leaves hooks out, so a copy without their annotations). */
  static void render() throws Exception {
    Path root = Path.of("..").toAbsolutePath().normalize();
    Path chart = work.resolve("chart");
    copyTree(root.resolve("helm/tpmkms"), chart);
    try (var files = Files.walk(chart.resolve("templates"))) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        String text = Files.readString(f);
        String stripped = text.replaceAll("(?m)^\\s*helm\\.sh/hook[a-z-]*:.*\\n", "");
        if (!stripped.equals(text)) Files.writeString(f, stripped);
      }
    }
    String pg = "jdbc:postgresql://postgres.default.svc:" + postgres.getPort() + "/";
    String yaml = new Helm(chart).template().withName(RELEASE).withNamespace(NAMESPACE).withKubeVersion("1.31.0")
        .withValuesFile(root.resolve("helm/tpmkms/examples/dev-swtpm.yaml"))
        .set("oidc.issuerUrl", keycloak.issuer("tpmkms"))
        .set("oidc.realmImport.keycloakUrl", keycloak.baseUrl())
        .set("database.keyService.url", pg + "tpmkms_keys")
        .set("database.policyService.url", pg + "tpmkms_policy")
        .set("database.auditService.url", pg + "tpmkms_audit")
        .set("tls.clientAuth", "required")
        .call();
    Files.writeString(work.resolve("rendered.yaml"), yaml);
    for (String doc : yaml.split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) continue;
      HasMetadata o = (HasMetadata) Serialization.unmarshal(doc);
      objects.add(o);
      if (o instanceof ConfigMap cm) configMaps.put(cm.getMetadata().getName(), cm.getData());
    }
  }

  /** cert-manager's part: each Certificate's dnsNames, server and client auth, into its secretName. */
  static void actAsCertManager() throws Exception {
    DevPki.Authority ca = DevPki.newAuthority("render-and-run test CA", Duration.ofDays(1));
    Path dir = Files.createDirectories(work.resolve("pki"));
    ca.writeCertificate(dir.resolve("ca.crt"));
    byte[] caPem = Files.readAllBytes(dir.resolve("ca.crt"));
    int n = 0;
    for (HasMetadata o : objects) {
      if (!(o instanceof GenericKubernetesResource r) || !r.getKind().equals("Certificate")) continue;
      @SuppressWarnings("unchecked")
      Map<String, Object> spec = (Map<String, Object>) r.getAdditionalProperties().get("spec");
      @SuppressWarnings("unchecked")
      List<String> names = (List<String>) spec.get("dnsNames");
      if (names == null) names = List.of((String) spec.get("commonName")); // a client-only certificate
      DevPki.Issued issued = ca.issue(names, Duration.ofDays(1));
      Path crt = dir.resolve(r.getMetadata().getName() + ".crt");
      Path key = dir.resolve(r.getMetadata().getName() + ".key");
      issued.write(crt, key);
      secrets.put((String) spec.get("secretName"), Map.of("tls.crt", Files.readAllBytes(crt),
          "tls.key", Files.readAllBytes(key), "ca.crt", caPem));
      n++;
    }
    assertEquals(5, n, "a Certificate per service, one for the helm test and one for the console");
  }

  /** What cluster DNS answers: every Service's names, and the database's, are this machine. */
  static Path hostsFile() throws Exception {
    StringBuilder b = new StringBuilder("127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
    b.append("127.0.0.1 postgres.default.svc\n");
    // the kubelet lists the pod's own host name too (the transaction manager looks itself up)
    b.append("127.0.0.1 ").append(Files.readString(Path.of("/proc/sys/kernel/hostname")).strip()).append('\n');
    for (HasMetadata o : objects) {
      if (!(o instanceof Service s)) continue;
      String n = s.getMetadata().getName();
      b.append("127.0.0.1 ").append(n).append(' ').append(n).append('.').append(NAMESPACE).append(' ')
          .append(n).append('.').append(NAMESPACE).append(".svc ").append(n).append('.').append(NAMESPACE)
          .append(".svc.cluster.local\n");
    }
    Path hosts = work.resolve("hosts");
    Files.writeString(hosts, b.toString());
    return hosts;
  }

  /**
   * The chart's realm import Job. Its image is Keycloak's, not ours: the rendered script runs here with
   * the Keycloak distribution's kcadm.sh, each mount path mapped to the directory of its volume.
   */
  static void runRealmImportJob() throws Exception {
    Job job = only(Job.class);
    PodSpec spec = job.getSpec().getTemplate().getSpec();
    PodRunner.Pod pod = runner.prepare("realm-import", spec, List.of(), Map.of());
    Container c = spec.getContainers().get(0);
    assertEquals(List.of("/bin/bash", "/realm/import.sh"), c.getCommand());
    Map<String, String> paths = new LinkedHashMap<>();
    paths.put("/opt/keycloak/", Keycloak.distribution() + "/");
    for (var vm : c.getVolumeMounts()) paths.put(vm.getMountPath() + "/", pod.volumes().get(vm.getName()) + "/");
    String script = Files.readString(pod.volumes().get("realm").resolve("import.sh"));
    for (var p : paths.entrySet()) script = script.replace(p.getKey(), p.getValue());
    Path local = work.resolve("import.sh");
    Files.writeString(local, script);
    Path log = Files.createDirectories(work.resolve("logs")).resolve("realm-import.log");
    ProcessBuilder pb = new ProcessBuilder("/bin/bash", local.toString()).redirectErrorStream(true)
        .redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    pb.environment().clear();
    pb.environment().put("PATH", System.getProperty("java.home") + "/bin:/usr/bin:/bin");
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    for (var e : c.getEnv()) {
      assertNotNull(e.getValue(), "the realm import Job's " + e.getName() + " has a value of its own");
      String v = e.getValue();
      for (var p : paths.entrySet()) {
        if ((v + "/").startsWith(p.getKey())) v = p.getValue() + (v + "/").substring(p.getKey().length());
      }
      pb.environment().put(e.getName(), v.endsWith("/") && !e.getValue().endsWith("/") ? v.substring(0, v.length() - 1) : v);
    }
    Process p = pb.start();
    boolean ended = p.waitFor(300, TimeUnit.SECONDS);
    if (!ended) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
    realmImportOutput = Files.readString(log);
    assertTrue(ended, "the realm import Job did not end within its 300 s:\n" + realmImportOutput);
    assertEquals(0, p.exitValue(), "realm import job:\n" + realmImportOutput);
  }

  /** The operator's part: an OAuth client for the helm test, with the secret in tests.credentialsSecret. */
  static void createHelmTestClient() throws Exception {
    ObjectNode client = JSON.createObjectNode()
        .put("clientId", "tpmkms-helm-test")
        .put("enabled", true)
        .put("publicClient", false)
        .put("clientAuthenticatorType", "client-secret")
        .put("secret", new String(secrets.get("tpmkms-helm-test").get("client-secret"), StandardCharsets.UTF_8))
        .put("serviceAccountsEnabled", true)
        .put("standardFlowEnabled", false)
        .put("directAccessGrantsEnabled", false);
    var mappers = client.putArray("protocolMappers");
    for (String audience : List.of("tpmkms-key-service", "tpmkms-policy-service", "tpmkms-audit-service")) {
      ObjectNode m = mappers.addObject().put("name", "audience " + audience).put("protocol", "openid-connect")
          .put("protocolMapper", "oidc-audience-mapper");
      m.putObject("config").put("included.client.audience", audience).put("access.token.claim", "true")
          .put("id.token.claim", "false");
    }
    String id = keycloak.createClient("tpmkms", client);
    JsonNode user = keycloak.adminGet("/realms/tpmkms/clients/" + id + "/service-account-user");
    var roles = JSON.createArrayNode();
    for (String role : List.of("tpmkms-admin", "tpmkms-user", "tpmkms-auditor")) {
      roles.add(keycloak.adminGet("/realms/tpmkms/roles/" + role));
    }
    keycloak.adminPost("/realms/tpmkms/users/" + user.get("id").asText() + "/role-mappings/realm", roles);
  }

  /** Every StatefulSet and Deployment, each replica a pod: sidecars first, then the containers, probes awaited. */
  static void startWorkloads() throws Exception {
    record Workload(String name, PodSpec spec, int replicas, List<String> claims) {}
    List<Workload> workloads = new ArrayList<>();
    for (HasMetadata o : objects) {
      if (o instanceof StatefulSet s) {
        workloads.add(new Workload(s.getMetadata().getName(), s.getSpec().getTemplate().getSpec(),
            s.getSpec().getReplicas(), s.getSpec().getVolumeClaimTemplates().stream()
            .map(t -> t.getMetadata().getName()).toList()));
      }
      if (o instanceof Deployment d) {
        workloads.add(new Workload(d.getMetadata().getName(), d.getSpec().getTemplate().getSpec(),
            d.getSpec().getReplicas(), List.of()));
      }
    }
    assertEquals(4, workloads.size(), "the three services and the console");
    // ports that more than one pod declares cannot all be had on one machine: each pod gets its own
    Map<Integer, Integer> declared = new HashMap<>();
    for (Workload w : workloads) {
      for (Container c : w.spec().getContainers()) {
        for (var p : c.getPorts()) declared.merge(p.getContainerPort(), w.replicas(), Integer::sum);
      }
    }
    int pods = 0;
    for (Workload w : workloads) pods += w.replicas();
    List<Integer> shared = declared.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList();
    for (var e : declared.entrySet()) {
      if (e.getValue() == 1) assertTrue(isFree(e.getKey()), "port " + e.getKey() + " is taken on this machine");
    }
    int[] free = ServiceProcess.freePorts(Math.max(1, pods * shared.size()));
    int next = 0;
    List<Object[]> started = new ArrayList<>();
    for (Workload w : workloads) {
      for (int i = 0; i < w.replicas(); i++) {
        Map<Integer, Integer> moves = new HashMap<>();
        for (int port : shared) moves.put(port, free[next++]);
        String podName = w.name() + "-" + i;
        PodRunner.Pod pod = runner.prepare(podName, w.spec(), w.claims(), moves);
        for (Container init : w.spec().getInitContainers() == null ? List.<Container>of() : w.spec().getInitContainers()) {
          if ("Always".equals(init.getRestartPolicy())) {
            PodRunner.Running r = runner.start(pod, init);
            if (init.getStartupProbe() != null) runner.awaitStarted(pod, init, r);
          } else {
            assertEquals(0, runner.runToEnd(pod, init, 120), podName + "/" + init.getName());
          }
        }
        for (Container c : w.spec().getContainers()) started.add(new Object[] {pod, c, runner.start(pod, c)});
      }
    }
    for (Object[] s : started) {
      runner.awaitStarted((PodRunner.Pod) s[0], (Container) s[1], (PodRunner.Running) s[2]);
    }
    Pod test = only(Pod.class);
    testPodObject = test;
    testPod = runner.prepare("helm-test", test.getSpec(), List.of(), Map.of());
  }

  @Test
  @Order(1)
  void realmImportJob_importedTheRealmWithoutDevelopmentUsers_andSetTheClientSecrets() throws Exception {
    assertTrue(realmImportOutput.contains("realm tpmkms imported"), realmImportOutput);
    for (String svc : List.of("key", "policy", "audit")) {
      assertTrue(realmImportOutput.contains("client tpmkms-" + svc + "-service: secret set"), realmImportOutput);
      JsonNode clients = keycloak.adminGet("/realms/tpmkms/clients?clientId=tpmkms-" + svc + "-service");
      JsonNode secret = keycloak.adminGet("/realms/tpmkms/clients/" + clients.get(0).get("id").asText() + "/client-secret");
      assertEquals(new String(secrets.get("tpmkms-oidc").get(svc + "-service"), StandardCharsets.UTF_8),
          secret.get("value").asText(), "the client secret is the one in the Secret");
    }
    assertEquals(0, keycloak.adminGet("/realms/tpmkms/users?username=dev-admin&exact=true").size(),
        "no development user in a cluster's realm");
  }

  @Test
  @Order(2)
  void helmTest_logsInChecksHealthAndRunsARoundTrip() throws Exception {
    PodSpec spec = testPodObject.getSpec();
    assertEquals(1, spec.getInitContainers().size());
    assertEquals(0, runner.runToEnd(testPod, spec.getInitContainers().get(0), 120),
        "helm test login:\n" + log("helm-test-login"));
    assertEquals(0, runner.runToEnd(testPod, spec.getContainers().get(0), 120), "helm test:\n" + log("helm-test-health"));
    String out = log("helm-test-health");
    assertEquals(3, out.lines().filter(l -> l.contains("SERVING")).count(), out);
    assertTrue(out.contains("OK (encrypt + decrypt"), out);
  }

  @Test
  @Order(3)
  void cliInTheTestPod_runsAKeyLifecycleOnTheTpm_andTheAuditChainVerifies() throws Exception {
    Path tmp = testPod.volumes().get("tmp");
    Files.writeString(tmp.resolve("hello.txt"), "render and run\n");
    Files.setPosixFilePermissions(tmp.resolve("hello.txt"), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
    if (!Files.exists(tmp.resolve("tpmkms"))) {
      assertEquals(0, runner.runToEnd(testPod, testPodObject.getSpec().getInitContainers().get(0), 120));
    }
    // what the pods run on: BoringSSL for TLS (tcnative extracts into the /tmp emptyDir of a read-only root)
    // and for the key service's software keys (Conscrypt), as in the images
    String details = cli("details", "health", "--details");
    assertEquals(3, details.lines().filter(l -> l.trim().equals("tls: BoringSSL (netty-tcnative)")).count(), details);
    assertTrue(details.contains("crypto: ECDSA: Conscrypt 2.5.2 (BoringSSL); RSA: Conscrypt 2.5.2 (BoringSSL)"), details);
    assertTrue(details.contains("backends: [SOFTWARE, TPM] (default TPM)"), details);
    String created = cli("create", "keys", "create", "helm/files", "--purpose", "encrypt", "--label", "by=render-and-run");
    assertTrue(created.matches("(?s).*protection:\\s+tpm\\n.*"), "a TPM key by default, the swtpm sidecar behind it:\n" + created);
    cli("encrypt", "encrypt", "helm/files", "--in", "/tmp/hello.txt", "--out", "/tmp/hello.enc", "--aad", "helm");
    cli("rotate", "keys", "rotate", "helm/files");
    cli("decrypt", "decrypt", "helm/files", "--in", "/tmp/hello.enc", "--out", "/tmp/hello.out", "--aad", "helm");
    assertEquals("render and run\n", Files.readString(tmp.resolve("hello.out")));
    String versions = cli("versions", "keys", "versions", "helm/files");
    assertEquals(2, versions.lines().filter(l -> l.toLowerCase().contains("enabled")).count(), versions);
    cli("sign-key", "keys", "create", "helm/signer", "--purpose", "sign", "--algorithm", "ec-p256-sha256", "--protection", "tpm");
    cli("sign", "sign", "helm/signer", "--in", "/tmp/hello.txt", "--out", "/tmp/hello.sig");
    cli("verify", "verify", "helm/signer", "--version", "1", "--signature", "/tmp/hello.sig", "--in", "/tmp/hello.txt");
    // the key service forwarded its events to the audit service, over mutual TLS with its client secret
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    String query = "";
    while (System.nanoTime() < deadline) {
      query = cli("query", "audit", "query", "--since", "1h", "--key", "helm/files");
      if (query.contains("Decrypt")) break;
      Thread.sleep(1000);
    }
    assertTrue(query.contains("Encrypt") && query.contains("Decrypt") && query.contains("RotateKey"), query);
    String verify = cli("audit-verify", "audit", "verify");
    assertTrue(verify.contains("chain valid"), verify);
  }

  /**
   * The console as a person uses it: its public page answers; its pages send the browser to the realm's
   * login form (client tpmkms-console, PKCE); after signing in there, the overview shows the three services
   * SERVING (health over mutual TLS with the console's own certificate, clientAuth required here) and who
   * signed in with their roles (the policy service accepted the token the console forwarded).
   */
  @Test
  @Order(4)
  void console_signsInThroughKeycloak_andReachesTheServicesOverMutualTls() throws Exception {
    Deployment console = objects.stream().filter(o -> o instanceof Deployment d
        && d.getMetadata().getName().equals(RELEASE + "-tpmkms-console")).map(Deployment.class::cast).findFirst().orElseThrow();
    Container c = console.getSpec().getTemplate().getSpec().getContainers().get(0);
    int port = PodRunner.containerPort(c, new io.fabric8.kubernetes.api.model.IntOrString("http"));
    String base = "http://127.0.0.1:" + port;
    assertEquals(200, PodRunner.httpStatus(port, "/signed-out"));

    String password = random();
    ObjectNode user = JSON.createObjectNode().put("username", "helm-console-admin").put("enabled", true)
        .put("email", "helm-console-admin@tpmkms.invalid").put("emailVerified", true)
        .put("firstName", "Helm").put("lastName", "Console");
    user.putArray("credentials").addObject().put("type", "password").put("value", password).put("temporary", false);
    String id = keycloak.adminPost("/realms/tpmkms/users", user);
    keycloak.adminPost("/realms/tpmkms/users/" + id + "/role-mappings/realm",
        JSON.createArrayNode().add(keycloak.adminGet("/realms/tpmkms/roles/tpmkms-admin")));

    Browser browser = new Browser();
    var toLogin = browser.get(base + "/");
    assertEquals(302, toLogin.statusCode(), "a page without a session goes to the realm's login");
    String auth = toLogin.headers().firstValue("Location").orElseThrow();
    assertTrue(auth.startsWith(keycloak.issuer("tpmkms") + "/protocol/openid-connect/auth?"), auth);
    assertTrue(auth.contains("client_id=tpmkms-console") && auth.contains("code_challenge_method=S256"), auth);
    var form = browser.get(auth);
    assertEquals(200, form.statusCode(), form.body());
    java.util.regex.Matcher action = java.util.regex.Pattern.compile("<form[^>]*id=\"kc-form-login\"[^>]*>")
        .matcher(form.body());
    assertTrue(action.find(), "Keycloak's login form:\n" + form.body());
    java.util.regex.Matcher url = java.util.regex.Pattern.compile("action=\"([^\"]+)\"").matcher(action.group());
    assertTrue(url.find(), action.group());
    var signedIn = browser.post(url.group(1).replace("&amp;", "&"),
        Map.of("username", "helm-console-admin", "password", password, "credentialId", ""));
    assertEquals(302, signedIn.statusCode(), "Keycloak accepts the password:\n" + signedIn.body());
    String callback = signedIn.headers().firstValue("Location").orElseThrow();
    assertTrue(callback.startsWith(base + "/login/callback?"), callback);
    var back = browser.get(callback);
    assertEquals(302, back.statusCode(), "the console exchanged the code:\n" + back.body());
    var overview = browser.get(base + back.headers().firstValue("Location").orElseThrow().replaceFirst("^https?://[^/]+", ""));
    assertEquals(200, overview.statusCode(), overview.body());
    String page = overview.body();
    assertEquals(3, page.split(">SERVING<", -1).length - 1, "the three services SERVING:\n" + page);
    assertTrue(page.contains("helm-console-admin") && page.contains("tpmkms-admin"), page);
    assertTrue(!page.contains("UNREACHABLE") && !page.contains("UNAUTHENTICATED"), page);
  }

  /** Just enough of a browser: no redirect followed, cookies kept per host (Secure ones too: loopback). */
  static final class Browser {
    final java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder()
        .followRedirects(java.net.http.HttpClient.Redirect.NEVER).connectTimeout(Duration.ofSeconds(5)).build();
    final Map<String, Map<String, String>> cookies = new HashMap<>();

    java.net.http.HttpResponse<String> get(String url) throws Exception {
      return send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url)).GET());
    }

    java.net.http.HttpResponse<String> post(String url, Map<String, String> form) throws Exception {
      StringBuilder body = new StringBuilder();
      for (var e : form.entrySet()) {
        if (body.length() > 0) body.append('&');
        body.append(java.net.URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8)).append('=')
            .append(java.net.URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8));
      }
      return send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url))
          .header("Content-Type", "application/x-www-form-urlencoded")
          .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body.toString())));
    }

    private java.net.http.HttpResponse<String> send(java.net.http.HttpRequest.Builder b) throws Exception {
      java.net.http.HttpRequest r = b.timeout(Duration.ofSeconds(60)).build();
      String host = r.uri().getAuthority();
      Map<String, String> jar = cookies.computeIfAbsent(host, h -> new LinkedHashMap<>());
      java.net.http.HttpRequest withCookies = r;
      if (!jar.isEmpty()) {
        StringBuilder cookie = new StringBuilder();
        jar.forEach((k, v) -> cookie.append(cookie.length() == 0 ? "" : "; ").append(k).append('=').append(v));
        withCookies = java.net.http.HttpRequest.newBuilder(r, (n, v) -> true).header("Cookie", cookie.toString()).build();
      }
      var response = http.send(withCookies, java.net.http.HttpResponse.BodyHandlers.ofString());
      for (String set : response.headers().allValues("Set-Cookie")) {
        String pair = set.split(";", 2)[0];
        int eq = pair.indexOf('=');
        String name = pair.substring(0, eq).trim();
        String value = pair.substring(eq + 1).trim();
        boolean expired = value.isEmpty() || set.toLowerCase(java.util.Locale.ROOT).contains("max-age=0");
        if (expired) jar.remove(name); else jar.put(name, value);
      }
      return response;
    }
  }

  /** The CLI with the helm test container's image, environment and volumes, and these arguments. */
  static String cli(String step, String... args) throws Exception {
    Container health = testPodObject.getSpec().getContainers().get(0);
    Container c = new ContainerBuilder(health).withName("cli-" + step).withArgs(args).build();
    int status = runner.runToEnd(testPod, c, 120);
    String out = log("helm-test-cli-" + step);
    assertEquals(0, status, "tpmkms " + String.join(" ", args) + ":\n" + out);
    return out;
  }

  static String log(String name) throws Exception {
    return Files.readString(work.resolve("logs").resolve(name + ".log"));
  }

  static <T> T only(Class<T> type) {
    List<T> found = objects.stream().filter(type::isInstance).map(type::cast).toList();
    assertEquals(1, found.size(), "one " + type.getSimpleName() + " rendered");
    return found.get(0);
  }

  static String random() {
    byte[] b = new byte[24];
    RANDOM.nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static boolean isFree(int port) {
    try (ServerSocket s = new ServerSocket(port)) {
      return true;
    } catch (Exception e) {
      return false;
    }
  }

  static void copyTree(Path from, Path to) throws Exception {
    Files.walkFileTree(from, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws java.io.IOException {
        Files.createDirectories(to.resolve(from.relativize(dir).toString()));
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws java.io.IOException {
        Files.copy(file, to.resolve(from.relativize(file).toString()));
        return FileVisitResult.CONTINUE;
      }
    });
  }
}

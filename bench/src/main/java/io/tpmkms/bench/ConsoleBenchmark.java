package io.tpmkms.bench;

import com.microsoft.playwright.Browser;
import com.microsoft.playwright.BrowserContext;
import com.microsoft.playwright.BrowserType;
import com.microsoft.playwright.Page;
import com.microsoft.playwright.Playwright;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.ListKeyVersionsRequest;
import io.tpmkms.proto.key.v1.ListKeysRequest;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import io.tpmkms.proto.policy.v1.BatchAuthorizeRequest;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.proto.policy.v1.Resource;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The admin console's page render times ({@code --console}), measured from a real browser
 * (Chromium driven by Playwright) against the packaged console, key and policy services and a real
 * Keycloak, with 10,000 keys in the catalogue and a key with 50 versions:
 *
 * <ul>
 *   <li>the keys list (the first page of 100 of 10,000 keys), the list filtered by a name substring
 *       (scans the namespace), and the page of a key with 50 versions;
 *   <li>each page's time from the browser's Navigation Timing: {@code responseStart} (the console's
 *       server time: its gRPC calls and the template) and {@code loadEventEnd} (the page usable: HTML,
 *       CSS and script loaded and parsed);
 *   <li>baseline in the same run: the gRPC calls each page makes (ListKeys / GetKey +
 *       ListKeyVersions, and the BatchAuthorize of the buttons), timed directly, so what the console adds
 *       is the difference.
 * </ul>
 *
 * Target (issue 16): p95 under 300 ms. Prints the table and rewrites the {@code console} section
 * of {@code docs/benchmarks.md}.
 */
final class ConsoleBenchmark {
  static final String SECTION = "console";
  static final String USAGE = "usage: java -jar bench/target/tpmkms-bench.jar --console [--keys 10000] "
      + "[--versions 50] [--samples 60] [--no-report]";
  private static final ServiceProcess.Kind POLICY_SERVICE = new ServiceProcess.Kind("policy service",
      "TPMKMS_POLICY_GRPC_PORT", "TPMKMS_POLICY_HTTP_PORT", "./mvnw -B -q -pl policy-service -am package -DskipTests");
  private static final String REALM = "tpmkms";
  private static final String NS = "bench";
  private static final List<String> KEY_ACTIONS = List.of("RotateKey", "UpdateKey", "SetPrimaryVersion",
      "DisableKeyVersion", "EnableKeyVersion", "ScheduleKeyVersionDestruction", "RestoreKeyVersion",
      "RevokeKeyVersion", "GetPublicKey", "GetKeyAttestation");

  private ConsoleBenchmark() {}

  static int main(String[] args) {
    int keys = 10_000;
    int versions = 50;
    int samples = 60;
    boolean report = true;
    try {
      for (int i = 0; i < args.length; i++) {
        switch (args[i]) {
          case "--console" -> { }
          case "--keys" -> keys = Integer.parseInt(args[++i]);
          case "--versions" -> versions = Integer.parseInt(args[++i]);
          case "--samples" -> samples = Integer.parseInt(args[++i]);
          case "--no-report" -> report = false;
          default -> throw new IllegalArgumentException("unknown option " + args[i]);
        }
      }
      if (keys < 100 || versions < 2 || samples < 10) throw new IllegalArgumentException("too small to measure");
    } catch (RuntimeException e) {
      System.err.println("tpmkms-bench: " + e.getMessage());
      System.err.println(USAGE);
      return 2;
    }
    try {
      return run(keys, versions, samples, report);
    } catch (Exception e) {
      System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
      e.printStackTrace(System.err);
      return 1;
    }
  }

  /** p50/p95/max of one page or call, in milliseconds. */
  record Times(String what, double p50, double p95, double max) {
    static Times of(String what, List<Double> ms) {
      double[] s = ms.stream().mapToDouble(Double::doubleValue).sorted().toArray();
      return new Times(what, pct(s, 0.50), pct(s, 0.95), s[s.length - 1]);
    }

    static double pct(double[] sorted, double p) {
      int i = (int) Math.ceil(p * sorted.length) - 1;
      return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }
  }

  private static int run(int keyCount, int versionCount, int samples, boolean report) throws Exception {
    Duration startTimeout = Duration.ofSeconds(180);
    Path root = Path.of("").toAbsolutePath();
    Path work = Files.createTempDirectory("tpmkms-bench-console-");
    try (Keycloak kc = Keycloak.start(work.resolve("keycloak"))) {
      kc.importRealm(root.resolve("deploy/keycloak/tpmkms-realm.json"));
      kc.createClient(REALM, Map.of("clientId", "tpmkms-bench", "publicClient", true,
          "directAccessGrantsEnabled", true, "attributes", Map.of("access.token.lifespan", "3600"),
          "protocolMappers", List.of(audience("tpmkms-key-service"), audience("tpmkms-policy-service"))));
      kc.createUser(REALM, "bench-admin", "bench-admin-pw", List.of("tpmkms-admin"), List.of());
      String token = kc.passwordGrant(REALM, "tpmkms-bench", null, "bench-admin", "bench-admin-pw").accessToken();

      Map<String, String> common = Map.of("TPMKMS_OIDC_URL", kc.issuer(REALM), "TPMKMS_AUDIT_ENABLED", "false",
          "TPMKMS_AUTH_MODE", "oidc");
      Path policyJar = Path.of("policy-service/target/quarkus-app/quarkus-run.jar");
      Path keyJar = Path.of("key-service/target/quarkus-app/quarkus-run.jar");
      Path consoleJar = Path.of("admin-console/target/quarkus-app/quarkus-run.jar");
      if (!Files.exists(consoleJar)) {
        throw new IllegalStateException(consoleJar + " is missing: ./mvnw -B -q -pl admin-console -am package "
            + "-DskipTests");
      }
      try (ServiceProcess policy = ServiceProcess.start(POLICY_SERVICE, policyJar, startTimeout, common)) {
        Map<String, String> keyEnv = new java.util.LinkedHashMap<>(common);
        keyEnv.put("TPMKMS_POLICY_SERVICE", policy.target());
        try (ServiceProcess key = ServiceProcess.start(ServiceProcess.KEY_SERVICE, keyJar, startTimeout, keyEnv)) {
          ManagedChannel keyChannel = channel(key.target(), token);
          ManagedChannel policyChannel = channel(policy.target(), token);
          try {
            var keys = KeyServiceGrpc.newBlockingStub(keyChannel);
            long t0 = System.nanoTime();
            populate(keys, keyCount, versionCount);
            System.out.printf(Locale.ROOT, "catalogue: %d keys and one with %d versions in %.0f s%n", keyCount,
                versionCount, (System.nanoTime() - t0) / 1e9);
            int consolePort = ServiceProcess.freePorts(1)[0];
            Process console = startConsole(consoleJar, consolePort, kc.issuer(REALM), key.target(), policy.target(),
                work.resolve("console.log"));
            try {
              String url = "http://127.0.0.1:" + consolePort;
              awaitHttp(url + "/signed-out", Duration.ofSeconds(120), console, work.resolve("console.log"));
              return measure(url, kc, keys, PolicyServiceGrpc.newBlockingStub(policyChannel), keyCount, versionCount,
                  samples, report);
            } finally {
              console.destroy();
              console.waitFor(30, TimeUnit.SECONDS);
              console.destroyForcibly();
            }
          } finally {
            keyChannel.shutdownNow();
            policyChannel.shutdownNow();
          }
        }
      }
    }
  }

  private static void populate(KeyServiceGrpc.KeyServiceBlockingStub keys, int keyCount, int versionCount)
      throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < 16; t++) {
        int thread = t;
        done.add(pool.submit(() -> {
          for (int i = thread; i < keyCount; i += 16) {
            keys.withDeadlineAfter(60, TimeUnit.SECONDS).createKey(CreateKeyRequest.newBuilder().setNamespace(NS)
                .setName(String.format(Locale.ROOT, "k%05d", i)).setPurpose(KeyPurpose.ENCRYPT_DECRYPT)
                .setProtectionLevel(ProtectionLevel.SOFTWARE).putLabels("team", "t" + (i % 20)).build());
          }
          return null;
        }));
      }
      for (Future<?> f : done) f.get();
    } finally {
      pool.shutdownNow();
    }
    keys.createKey(CreateKeyRequest.newBuilder().setNamespace(NS).setName("versions")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setProtectionLevel(ProtectionLevel.SOFTWARE).build());
    for (int v = 1; v < versionCount; v++) {
      keys.rotateKey(RotateKeyRequest.newBuilder().setKey(NS + "/versions").build());
    }
  }

  private static int measure(String url, Keycloak kc, KeyServiceGrpc.KeyServiceBlockingStub keys,
      PolicyServiceGrpc.PolicyServiceBlockingStub policies, int keyCount, int versionCount, int samples,
      boolean report) throws Exception {
    List<String[]> pages = List.of(
        new String[] {"keys list, first page (100 of " + keyCount + " keys)", url + "/keys?namespace=" + NS},
        new String[] {"keys list, name contains \"k0999\" (scans " + keyCount + " keys)",
            url + "/keys?namespace=" + NS + "&name=k0999"},
        new String[] {"a key with " + versionCount + " versions", url + "/keys/" + NS + "/versions"});
    List<Times> server = new ArrayList<>();
    List<Times> loaded = new ArrayList<>();
    try (Playwright playwright = Playwright.create(new Playwright.CreateOptions()
        .setEnv(Map.of("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")))) {
      Browser browser = playwright.chromium().launch(new BrowserType.LaunchOptions()
          .setExecutablePath(Path.of("/usr/bin/chromium")).setHeadless(true)
          .setArgs(List.of("--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run")));
      BrowserContext context = browser.newContext(new Browser.NewContextOptions().setViewportSize(1280, 900));
      Page page = context.newPage();
      page.navigate(url + "/");
      page.waitForSelector("#username");
      page.fill("#username", "bench-admin");
      page.fill("#password", "bench-admin-pw");
      page.click("#kc-login");
      page.waitForURL(url + "/**");
      page.waitForSelector("main h1");
      for (String[] p : pages) {
        List<Double> ttfb = new ArrayList<>();
        List<Double> load = new ArrayList<>();
        for (int i = 0; i < samples + 10; i++) {
          var response = page.navigate(p[1]);
          if (response == null || response.status() != 200) {
            throw new IllegalStateException(p[0] + ": HTTP " + (response == null ? "none" : response.status()) + " "
                + page.innerText("body"));
          }
          @SuppressWarnings("unchecked")
          List<Object> t = (List<Object>) page.evaluate("() => { const n = performance.getEntriesByType("
              + "'navigation')[0]; return [n.responseStart - n.startTime, n.loadEventEnd - n.startTime]; }");
          if (i < 10) continue; // warm-up: the console's JIT and the services' caches
          ttfb.add(((Number) t.get(0)).doubleValue());
          load.add(((Number) t.get(1)).doubleValue());
        }
        check(page, p[0], keyCount, versionCount);
        server.add(Times.of(p[0], ttfb));
        loaded.add(Times.of(p[0], load));
        System.out.printf(Locale.ROOT, "%-60s server p50 %6.1f ms p95 %6.1f | page loaded p50 %6.1f ms p95 %6.1f "
            + "max %6.1f%n", p[0], server.get(server.size() - 1).p50(), server.get(server.size() - 1).p95(),
            loaded.get(loaded.size() - 1).p50(), loaded.get(loaded.size() - 1).p95(),
            loaded.get(loaded.size() - 1).max());
      }
      browser.close();
    }
    // the same calls straight over gRPC (the console's work without HTTP, template and browser)
    List<Times> grpc = new ArrayList<>();
    grpc.add(time("ListKeys (100 of " + keyCount + ") + BatchAuthorize (1 action)", samples, () -> {
      keys.listKeys(ListKeysRequest.newBuilder().setNamespace(NS).setPageSize(100).build());
      policies.batchAuthorize(batch(List.of("CreateKey"), "new-key"));
      return null;
    }));
    grpc.add(time("ListKeys name contains \"k0999\" + BatchAuthorize (1 action)", samples, () -> {
      keys.listKeys(ListKeysRequest.newBuilder().setNamespace(NS).setNameContains("k0999").setPageSize(100).build());
      policies.batchAuthorize(batch(List.of("CreateKey"), "new-key"));
      return null;
    }));
    grpc.add(time("GetKey + ListKeyVersions (" + versionCount + ") + BatchAuthorize (10 actions)", samples, () -> {
      keys.getKey(GetKeyRequest.newBuilder().setKey(NS + "/versions").build());
      keys.listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(NS + "/versions").setPageSize(1000)
          .setIncludeDestroyed(true).build());
      policies.batchAuthorize(batch(KEY_ACTIONS, "versions"));
      return null;
    }));
    for (Times g : grpc) {
      System.out.printf(Locale.ROOT, "%-60s gRPC p50 %6.1f ms p95 %6.1f%n", g.what(), g.p50(), g.p95());
    }
    String text = format(keyCount, versionCount, samples, server, loaded, grpc);
    System.out.println(text);
    if (report) {
      ReportDocument.write(Path.of("docs/benchmarks.md"), SECTION, text);
      System.out.println("wrote section " + SECTION + " of docs/benchmarks.md");
    }
    return 0;
  }

  /** The pages show what they should (else the timings would be of error pages). */
  private static void check(Page page, String what, int keyCount, int versionCount) {
    if (what.startsWith("a key")) {
      int rows = page.locator("table[aria-label=Versions] tbody tr").count();
      if (rows != versionCount) throw new IllegalStateException(what + ": " + rows + " version rows");
    } else if (what.contains("contains")) {
      int rows = page.locator("table[aria-label=Keys] tbody tr a").count();
      int expected = (int) java.util.stream.IntStream.range(0, keyCount)
          .filter(i -> String.format(Locale.ROOT, "k%05d", i).contains("k0999")).count();
      if (rows != expected) throw new IllegalStateException(what + ": " + rows + " rows, expected " + expected);
    } else {
      int rows = page.locator("table[aria-label=Keys] tbody tr a").count();
      if (rows != 100) throw new IllegalStateException(what + ": " + rows + " rows");
    }
  }

  private static BatchAuthorizeRequest batch(List<String> actions, String keyName) {
    BatchAuthorizeRequest.Builder b = BatchAuthorizeRequest.newBuilder();
    for (String a : actions) {
      b.addRequests(io.tpmkms.proto.policy.v1.AuthorizeRequest.newBuilder().setAction(a)
          .setResource(Resource.newBuilder().setNamespace(NS).setKeyName(keyName)));
    }
    return b.build();
  }

  private static Times time(String what, int samples, Supplier<Void> call) {
    List<Double> ms = new ArrayList<>();
    for (int i = 0; i < samples + 10; i++) {
      long t = System.nanoTime();
      call.get();
      if (i >= 10) ms.add((System.nanoTime() - t) / 1e6);
    }
    return Times.of(what, ms);
  }

  private static String format(int keyCount, int versionCount, int samples, List<Times> server, List<Times> loaded,
      List<Times> grpc) {
    StringBuilder b = new StringBuilder();
    b.append("## Admin console: page render times from the browser (`--console`), ").append(LocalDate.now())
        .append("\n\n");
    b.append(MachineInfo.current().describe()).append("\n\n");
    b.append("Headless Chromium (Playwright) signed in through Keycloak as an admin; the packaged console, key and "
        + "policy services (audit off) on this machine, ").append(keyCount).append(" SOFTWARE keys in one namespace "
        + "and a key with ").append(versionCount).append(" versions. Each page loaded ").append(samples)
        .append(" times after 10 warm-ups, one at a time; times from the browser's Navigation Timing. *Server* is "
            + "`responseStart` (request sent until the first byte: the console's gRPC calls and the template), "
            + "*loaded* is `loadEventEnd` (HTML, CSS and script loaded and parsed). Target: loaded p95 < 300 ms.\n\n");
    b.append("| Page | server p50 / p95 ms | loaded p50 / p95 ms | loaded max ms | the page's gRPC calls, direct, "
        + "p50 / p95 ms |\n|---|---|---|---|---|\n");
    for (int i = 0; i < server.size(); i++) {
      b.append(String.format(Locale.ROOT, "| %s | %.1f / %.1f | %.1f / %.1f | %.1f | %.1f / %.1f (%s) |%n",
          server.get(i).what(), server.get(i).p50(), server.get(i).p95(), loaded.get(i).p50(), loaded.get(i).p95(),
          loaded.get(i).max(), grpc.get(i).p50(), grpc.get(i).p95(), grpc.get(i).what()));
    }
    boolean met = loaded.stream().allMatch(t -> t.p95() < 300);
    b.append("\nTarget ").append(met ? "met" : "NOT met").append(": the slowest loaded p95 is ")
        .append(String.format(Locale.ROOT, "%.1f", loaded.stream().mapToDouble(Times::p95).max().orElse(0)))
        .append(" ms.\n");
    return b.toString();
  }

  private static Process startConsole(Path jar, int port, String issuer, String keyTarget, String policyTarget,
      Path log) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", jar.toString()).redirectErrorStream(true).redirectOutput(log.toFile());
    Map<String, String> env = pb.environment();
    env.put("TPMKMS_CONSOLE_PORT", Integer.toString(port));
    env.put("TPMKMS_OIDC_URL", issuer);
    env.put("TPMKMS_CONSOLE_KEY_SERVICE", keyTarget);
    env.put("TPMKMS_CONSOLE_POLICY_SERVICE", policyTarget);
    env.put("TPMKMS_CONSOLE_AUDIT_SERVICE", "127.0.0.1:1"); // audit off in this run: pages measured do not call it
    return pb.start();
  }

  private static void awaitHttp(String url, Duration timeout, Process process, Path log) throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    long end = System.nanoTime() + timeout.toNanos();
    while (true) {
      try {
        if (http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding())
            .statusCode() == 200) return;
      } catch (IOException notYet) {
        // starting
      }
      if (!process.isAlive() || System.nanoTime() - end > 0) {
        throw new IllegalStateException("the console did not come up: " + Files.readString(log));
      }
      Thread.sleep(250);
    }
  }

  private static ManagedChannel channel(String target, String token) {
    Metadata m = new Metadata();
    m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    ClientInterceptor bearer = MetadataUtils.newAttachHeadersInterceptor(m);
    return Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).intercept(bearer).build();
  }

  private static Map<String, Object> audience(String aud) {
    return Map.of("name", "aud-" + aud, "protocol", "openid-connect", "protocolMapper", "oidc-audience-mapper",
        "config", Map.of("included.custom.audience", aud, "access.token.claim", "true"));
  }

}

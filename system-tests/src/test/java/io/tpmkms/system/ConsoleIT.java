package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.microsoft.playwright.APIResponse;
import com.microsoft.playwright.Browser;
import com.microsoft.playwright.BrowserContext;
import com.microsoft.playwright.BrowserType;
import com.microsoft.playwright.Page;
import com.microsoft.playwright.Playwright;
import com.microsoft.playwright.options.Cookie;
import com.microsoft.playwright.options.FormData;
import com.microsoft.playwright.options.RequestOptions;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16: the admin console in a real browser (Chromium driven by Playwright) against the real
 * Keycloak login page and the three packaged services over mutual TLS, the console itself packaged.
 * An admin's key lifecycle and a policy written through the validator, a user who may not (buttons disabled with the policy service's reason, a
 * hand-made POST refused by the service), an auditor verifying the chain and finding the admin's
 * actions, logout, CSRF and the security headers. Screenshots of each page go to
 * target/console-screenshots.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleIT {
  static final String REALM = SharedKeycloak.REALM;
  static final Path SHOTS = Path.of("target/console-screenshots").toAbsolutePath();

  @TempDir static Path dir;
  static Keycloak keycloak;
  static ThreeServices stack;
  static Process console;
  static String consoleUrl;
  static Playwright playwright;
  static Browser browser;
  static final String KEY = "k" + UUID.randomUUID().toString().substring(0, 8);
  static final String NAMESPACE = "console";
  static final String FULL = NAMESPACE + "/" + KEY;
  /** The key service's TPM, with an EK certificate from swtpm_localca (the manufacturer in this test). */
  static io.tpmkms.protection.tpm.Swtpm tpm;

  @BeforeAll
  static void start() throws Exception {
    Path root = Path.of("..").toAbsolutePath().normalize();
    Files.createDirectories(SHOTS);
    keycloak = SharedKeycloak.get();
    keycloak.createUser(REALM, "console-admin", "console-admin-pw", List.of("tpmkms-admin", "tpmkms-auditor"),
        List.of());
    keycloak.createUser(REALM, "console-user", "console-user-pw", List.of("tpmkms-user"), List.of());
    keycloak.createUser(REALM, "console-auditor", "console-auditor-pw", List.of("tpmkms-auditor"), List.of());
    tpm = io.tpmkms.protection.tpm.Swtpm.startWithEkCertificate();
    stack = ThreeServices.start(dir, keycloak, REALM, Map.of("TPMKMS_AUDIT_CHECKPOINT_INTERVAL", "1S"), Map.of(),
        Map.of("TPMKMS_AUTHZ_CACHE_TTL", "1s",
        "TPMKMS_BACKEND_TPM_TRANSPORT", "unix", "TPMKMS_BACKEND_TPM_PATH", tpm.socket().toString()));
    int keyPort = stack.keyPort;
    int policyPort = stack.policyPort;
    int auditPort = stack.auditPort;

    int consolePort = ServiceProcess.freePorts(1)[0];
    consoleUrl = "http://127.0.0.1:" + consolePort;
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", root.resolve("admin-console/target/quarkus-app/quarkus-run.jar").toString())
        .redirectErrorStream(true).redirectOutput(dir.resolve("console.log").toFile());
    Map<String, String> env = pb.environment();
    env.put("TPMKMS_CONSOLE_PORT", Integer.toString(consolePort));
    env.put("TPMKMS_OIDC_URL", keycloak.issuer(REALM));
    env.put("TPMKMS_CONSOLE_KEY_SERVICE", "localhost:" + keyPort);
    env.put("TPMKMS_CONSOLE_POLICY_SERVICE", "localhost:" + policyPort);
    env.put("TPMKMS_CONSOLE_AUDIT_SERVICE", "localhost:" + auditPort);
    env.put("TPMKMS_CONSOLE_TLS_CA_FILE", SystemTls.CA.toString());
    env.put("TPMKMS_CONSOLE_TLS_CERT_FILE", SystemTls.DIR.resolve("system-test.crt").toString());
    env.put("TPMKMS_CONSOLE_TLS_KEY_FILE", SystemTls.DIR.resolve("system-test.key").toString());
    env.put("TPMKMS_CONSOLE_EK_CA_FILE", tpm.dir.resolve("ca/issuercert.pem").toString());
    console = pb.start();
    awaitHttp(consoleUrl + "/signed-out", Duration.ofSeconds(90));

    playwright = Playwright.create(new Playwright.CreateOptions()
        .setEnv(Map.of("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")));
    browser = playwright.chromium().launch(new BrowserType.LaunchOptions()
        .setExecutablePath(Path.of("/usr/bin/chromium")).setHeadless(true)
        .setArgs(List.of("--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run")));
  }

  @AfterAll
  static void stop() throws Exception {
    if (browser != null) browser.close();
    if (playwright != null) playwright.close();
    if (console != null) {
      console.destroy();
      console.waitFor();
    }
    if (stack != null) stack.close();
    if (tpm != null) tpm.close();
  }

  static void awaitHttp(String url, Duration timeout) throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    long end = System.nanoTime() + timeout.toNanos();
    while (true) {
      try {
        if (http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding())
            .statusCode() == 200) return;
      } catch (IOException notYet) {
        // starting
      }
      if (!console.isAlive()) {
        throw new IllegalStateException("the console died: " + Files.readString(dir.resolve("console.log")));
      }
      if (System.nanoTime() - end > 0) {
        throw new IllegalStateException("the console did not answer: " + Files.readString(dir.resolve("console.log")));
      }
      Thread.sleep(250);
    }
  }

  /** A fresh browser session signed in as {@code user} through Keycloak's login page. */
  static Page signIn(String user, String password) {
    BrowserContext context = browser.newContext(new Browser.NewContextOptions().setViewportSize(1280, 900));
    Page page = context.newPage();
    try {
      page.navigate(consoleUrl + "/");
      page.waitForSelector("#username");
      assertTrue(page.url().startsWith(keycloak.issuer(REALM)), "the Keycloak login page: " + page.url());
      page.fill("#username", user);
      page.fill("#password", password);
      page.click("#kc-login");
      page.waitForURL(consoleUrl + "/**");
      page.waitForSelector("main h1");
    } catch (com.microsoft.playwright.PlaywrightException e) {
      String log;
      try {
        log = Files.readString(dir.resolve("console.log"));
      } catch (IOException io) {
        log = io.toString();
      }
      throw new AssertionError("not signed in: at " + page.url() + ": "
          + page.innerText("body") + "\nconsole log:\n"
          + log.substring(Math.max(0, log.length() - 6000)), e);
    }
    return page;
  }

  /**
   * A POST made by hand from the signed-in page (fetch, same origin, the browser's cookies), with
   * {@code csrf} as its token (none when null): [status, body].
   */
  static List<?> post(Page page, String path, String csrf) {
    return (List<?>) page.evaluate("async ([url, token]) => { const b = new URLSearchParams(); "
        + "if (token) b.set('_csrf', token); b.set('x', 'y'); "
        + "const r = await fetch(url, {method: 'POST', body: b, redirect: 'manual'}); "
        + "return [r.status, await r.text()]; }", List.of(consoleUrl + path, csrf == null ? "" : csrf));
  }

  /** A form POST made by hand from the signed-in page with these fields: [status, body]. */
  static List<?> postForm(Page page, String path, Map<String, String> fields, boolean multipart) {
    return (List<?>) page.evaluate("async ([url, fields, multipart]) => { const b = multipart ? new FormData() "
        + ": new URLSearchParams(); for (const [k, v] of Object.entries(fields)) b.append(k, v); "
        + "const r = await fetch(url, {method: 'POST', body: b, redirect: 'manual'}); "
        + "return [r.status, await r.text()]; }", List.of(consoleUrl + path, fields, multipart));
  }

  /** After a change: the page with its "done" message, else a failure that shows the page. */
  static void expectDone(Page page) {
    try {
      page.waitForSelector(".done", new Page.WaitForSelectorOptions().setTimeout(20_000));
    } catch (com.microsoft.playwright.PlaywrightException e) {
      shot(page, "failed-" + System.nanoTime());
      throw new AssertionError("no confirmation at " + page.url() + ": " + page.innerText("body"), e);
    }
  }

  static void shot(Page page, String name) {
    page.screenshot(new Page.ScreenshotOptions().setPath(SHOTS.resolve(name + ".png")).setFullPage(true));
  }

  static String versionState(Page page, int version) {
    return page.textContent("#v" + version + " .state").trim();
  }

  @Test
  @Order(1)
  void admin_createsRotatesSchedulesDestructionAndRestores() {
    Page page = signIn("console-admin", "console-admin-pw");
    assertEquals("Overview", page.textContent("h1").trim());
    assertTrue(page.textContent("main").contains("SERVING"), page.textContent("main"));
    shot(page, "overview");

    var form = page.navigate(consoleUrl + "/keys/new?namespace=" + NAMESPACE);
    assertEquals(200, form.status(), page.innerText("body"));
    page.fill("input[name=name]", KEY);
    page.selectOption("select[name=purpose]", "ENCRYPT_DECRYPT");
    page.fill("input[name=labels]", "team=console");
    shot(page, "new-key");
    page.click("#create");
    expectDone(page);
    assertEquals("Key " + FULL, page.textContent("h1").trim());
    assertEquals("v1", page.textContent("#primary-version").trim());

    page.click("#rotate");
    expectDone(page);
    assertTrue(page.textContent(".done").contains("rotated"), page.textContent(".done"));
    assertEquals("v2", page.textContent("#primary-version").trim(), "version 2 is primary");
    assertEquals("ENABLED", versionState(page, 1));

    page.click("#v1 a:has-text('Schedule destruction')");
    page.waitForSelector("input[name=confirm]");
    assertTrue(page.isDisabled("#confirm"), "disabled until the name is typed");
    page.fill("input[name=confirm]", FULL);
    shot(page, "confirm-destroy");
    page.click("#confirm");
    expectDone(page);
    assertEquals("DESTROY_SCHEDULED", versionState(page, 1));
    shot(page, "key");
    page.navigate(consoleUrl + "/");
    assertTrue(page.textContent("#destructions").contains(FULL + " v1"), "the overview lists destructions due: "
        + page.textContent("main"));
    page.navigate(consoleUrl + "/keys/" + NAMESPACE + "/" + KEY);

    page.click("#v1 button[data-action=restore]");
    expectDone(page);
    assertEquals("DISABLED", versionState(page, 1), "restored versions come back disabled");

    page.navigate(consoleUrl + "/keys?namespace=" + NAMESPACE);
    assertTrue(page.textContent("table").contains(FULL));
    assertEquals(1, page.locator("a.button:has-text('Create key')").count(), "an admin may create keys here");
    shot(page, "keys");
    page.selectOption("select[name=purpose]", "MAC");
    page.click("form.filters button[type=submit]");
    page.waitForURL("**purpose=MAC**");
    assertTrue(page.textContent("table").contains("No key matches"), page.textContent("table"));
    page.selectOption("select[name=purpose]", "ENCRYPT_DECRYPT");
    page.fill("input[name=name]", KEY.substring(1, 6));
    page.click("form.filters button[type=submit]");
    page.waitForURL("**purpose=ENCRYPT_DECRYPT**");
    assertTrue(page.textContent("table").contains(FULL), page.textContent("table"));
    page.context().close();
  }

  @Test
  @Order(2)
  void user_seesLifecycleActionsDisabledWithTheReason_andAHandMadePostIsRefusedByTheService() {
    Page page = signIn("console-user", "console-user-pw");
    var keyPage = page.navigate(consoleUrl + "/keys/" + NAMESPACE + "/" + KEY);
    assertEquals(200, keyPage.status(), page.innerText("body"));
    assertTrue(page.isDisabled("#rotate"), "rotation disabled for a user");
    String why = page.textContent("#rotate-why");
    assertTrue(why.contains("Not allowed"), why);
    assertTrue(page.isDisabled("#v1 button[data-action=enable]"), "enable disabled");
    shot(page, "key-as-user");
    page.navigate(consoleUrl + "/keys?namespace=" + NAMESPACE);
    assertTrue(page.textContent("#create-why").startsWith("Not allowed for you"), page.textContent("#create-why"));

    // the user's own session and CSRF token (from a form it may use), a POST the page does not offer
    page.navigate(consoleUrl + "/audit");
    String token = page.getAttribute("input[name=_csrf]", "value");
    List<?> r = post(page, "/keys/" + NAMESPACE + "/" + KEY + "/rotate", token);
    assertEquals(403, ((Number) r.get(0)).intValue(), String.valueOf(r.get(1)));
    String body = (String) r.get(1);
    assertTrue(body.contains("PERMISSION_DENIED"), body);
    page.context().close();
  }

  @Test
  @Order(2)
  void admin_checksADecision_writesAPolicyWithItsValidationErrorsShown_andComparesVersions() {
    Page page = signIn("console-admin", "console-admin-pw");
    var list = page.navigate(consoleUrl + "/policies");
    assertEquals(200, list.status(), page.innerText("body"));
    page.fill("input[name=checkAction]", "RotateKey");
    page.fill("input[name=checkNamespace]", NAMESPACE);
    page.fill("input[name=checkKey]", KEY);
    page.click("#check");
    page.waitForSelector("#decision");
    String decision = page.textContent("#decision");
    assertTrue(decision.contains("May you RotateKey on key " + FULL + "?") && decision.contains("ALLOW")
        && decision.contains("role binding"), decision);
    page.fill("input[name=checkAction]", "Decrypt"); // an admin manages keys but does not use them
    page.click("#check");
    page.waitForSelector("#decision:has-text('Decrypt')");
    assertTrue(page.textContent("#decision").contains("DENY") && page.textContent("#decision").contains("default deny"),
        page.textContent("#decision"));

    String id = "no-interns-" + KEY.toLowerCase();
    page.fill("input[name=id]", id);
    page.fill("textarea[name=text]", "forbid (principal, action == Tpmkms::Action::\"NoSuchAction\", resource);");
    page.click("#create-policy");
    page.waitForSelector("#policy-error");
    assertTrue(page.textContent("#policy-error").contains("not valid"), page.textContent("#policy-error"));
    assertTrue(page.inputValue("textarea[name=text]").contains("NoSuchAction"), "the text is kept for fixing");
    page.fill("textarea[name=text]", "forbid (principal in Tpmkms::Group::\"/interns\", "
        + "action == Tpmkms::Action::\"Decrypt\", resource);");
    page.click("#create-policy");
    expectDone(page);
    assertEquals("Policy " + id, page.textContent("h1").trim());
    page.fill("input[name=description]", "interns never decrypt");
    page.fill("textarea[name=text]", "forbid (principal in Tpmkms::Group::\"/interns\", "
        + "action in [Tpmkms::Action::\"Decrypt\", Tpmkms::Action::\"AsymmetricDecrypt\"], resource);");
    page.click("#save-policy");
    expectDone(page);
    String side = page.textContent(".side");
    assertTrue(side.contains("v1") && side.contains("v2") && side.contains("AsymmetricDecrypt"), side);
    shot(page, "policy");

    // deletion: the server checks the typed id and the version too, whatever the page's script does
    String csrfToken = page.getAttribute("input[name=_csrf]", "value");
    List<?> wrongId = postForm(page, "/policies/" + id + "/delete", Map.of("_csrf", csrfToken, "confirm",
        id + "x", "expectedVersion", "2"), false);
    assertEquals(400, ((Number) wrongId.get(0)).intValue(), String.valueOf(wrongId.get(1)));
    List<?> stale = postForm(page, "/policies/" + id + "/delete", Map.of("_csrf", csrfToken, "confirm", id,
        "expectedVersion", "1"), false);
    assertEquals(409, ((Number) stale.get(0)).intValue(), "a concurrent change (v2 exists): "
        + String.valueOf(stale.get(1)).replaceAll("(?s).*id=\"delete-error\">([^<]*)<.*", "$1"));
    page.reload();
    assertFalse(page.textContent("main").contains("Deleted in"), "still in force after both refusals");
    // the button stays disabled until the id is typed; then a deleted version, the history kept
    assertTrue(page.isDisabled("#delete-policy"), "disabled until the id is typed");
    page.fill("form[action$='/delete'] input[name=confirm]", id.substring(1));
    assertTrue(page.isDisabled("#delete-policy"), "a wrong id keeps it disabled");
    page.fill("form[action$='/delete'] input[name=confirm]", id);
    page.click("#delete-policy");
    expectDone(page);
    assertEquals("Policy deleted.", page.textContent(".done").trim());
    assertTrue(page.textContent("main").contains("Deleted in v3"), page.textContent("main"));
    assertEquals(0, page.locator("#delete-policy").count(), "nothing left to delete");
    page.navigate(consoleUrl + "/policies");
    assertFalse(page.textContent("main").contains("interns never decrypt"), "no longer among the policies in force");
    page.context().close();
  }

  @Test
  @Order(3)
  void auditor_findsTheAdminsActions_andVerifiesTheChain() throws Exception {
    Page page = signIn("console-auditor", "console-auditor-pw");
    String found = "";
    for (int i = 0; i < 60 && !found.contains("RotateKey"); i++) { // events reach the audit service within seconds
      page.navigate(consoleUrl + "/audit?key=" + FULL);
      found = page.textContent("table");
      if (!found.contains("RotateKey")) Thread.sleep(500);
    }
    assertTrue(found.contains("KeyService/RotateKey") && found.contains("console-admin"), found);
    assertTrue(found.contains("ScheduleKeyVersionDestruction") && found.contains("RestoreKeyVersion"), found);
    page.click("#verify");
    page.waitForSelector("#verified");
    assertTrue(page.textContent("#verified").contains("The chain is intact"), page.textContent("#verified"));
    shot(page, "audit");

    // one record in full, its link in the chain checked
    page.navigate(consoleUrl + "/audit?key=" + FULL + "&operation=tpmkms.key.v1.KeyService/RotateKey");
    String sequence = page.textContent("table tbody tr:first-child td:first-child a").trim();
    page.click("table tbody tr:first-child td:first-child a");
    page.waitForSelector("#link");
    assertTrue(page.textContent("#link").startsWith("In the chain: this record's hash recomputes"),
        page.textContent("#link"));
    String record = page.innerText("#record");
    assertTrue(record.contains("tpmkms.key.v1.KeyService/RotateKey") && record.contains(FULL)
        && record.contains("previous_hash") && record.contains("delivered_by"), record);
    shot(page, "audit-record");

    // the export as a download: JSON lines from 1 to that record, numbered without gaps
    page.navigate(consoleUrl + "/audit");
    page.fill("input[name=to]", sequence);
    com.microsoft.playwright.Download download = page.waitForDownload(() -> page.click("#export"));
    assertEquals("tpmkms-audit-1-" + sequence + ".jsonl", download.suggestedFilename());
    List<String> lines = Files.readAllLines(download.path());
    assertEquals(Integer.parseInt(sequence), lines.size());
    for (int i = 0; i < lines.size(); i++) {
      assertTrue(lines.get(i).startsWith("{\"sequence\":" + (i + 1) + ","), lines.get(i));
    }
    // a bad range is refused with the reason, not a broken download
    var bad = page.navigate(consoleUrl + "/audit/export?from=5&to=2");
    assertEquals(400, bad.status());
    assertTrue(page.textContent("#error").contains("Invalid range"), page.textContent("#error"));

    var cps = page.navigate(consoleUrl + "/audit/checkpoints");
    assertEquals(200, cps.status(), page.innerText("body"));
    assertTrue(page.textContent("#checkpoints tbody").contains("software"), "a checkpoint every second, signed by "
        + "the audit service's software key (it has no TPM here): " + page.textContent("#checkpoints tbody"));
    page.context().close();
  }

  @Test
  @Order(4)
  void admin_checksATpmKeysAttestation_checkByCheck_andASoftwareKeyHasNone() {
    Page page = signIn("console-admin", "console-admin-pw");
    String name = "att" + UUID.randomUUID().toString().substring(0, 6);
    page.navigate(consoleUrl + "/keys/new?namespace=" + NAMESPACE);
    page.fill("input[name=name]", name);
    page.selectOption("select[name=purpose]", "ASYMMETRIC_SIGN");
    page.selectOption("select[name=protection]", "TPM");
    page.click("#create");
    expectDone(page);
    page.click("#v1 a:has-text('TPM attestation')");
    page.waitForSelector("#verdict");
    shot(page, "attestation");
    String verdict = page.textContent("#verdict");
    assertTrue(verdict.startsWith("Verified: " + NAMESPACE + "/" + name + " v1 was generated in a TPM"), verdict);
    String checks = page.innerText("#checks");
    // every check ran and passed, the public key and the EK certificate (against swtpm_localca's CA) included
    for (String check : List.of("signature by the attestation key", "nonce", "certified name",
        "attributes fixedTPM fixedParent sensitiveDataOrigin", "public key matches",
        "EK certificate issued by the given CA")) {
      assertTrue(checks.contains(check), check + " in " + checks);
    }
    assertEquals(0, page.locator("#checks .badge.bad").count(), checks);
    assertEquals(8, page.locator("#checks .badge.ok").count(), checks);
    String fields = page.innerText("#fields");
    assertTrue(fields.contains("fixedTPM fixedParent sensitiveDataOrigin"), fields);
    assertTrue(fields.contains("generated in the TPM"), fields);
    assertTrue(fields.contains("swtpm"), "the EK certificate's issuer: " + fields);
    // a fresh nonce per look: a second look shows another one
    String nonce1 = page.textContent("#fields dd:nth-of-type(2)");
    page.reload();
    page.waitForSelector("#verdict");
    assertNotEquals(nonce1, page.textContent("#fields dd:nth-of-type(2)"));

    // a software key has no TPM attestation: no link, and the page says why in the service's words
    String soft = "sw" + UUID.randomUUID().toString().substring(0, 6);
    page.navigate(consoleUrl + "/keys/new?namespace=" + NAMESPACE);
    page.fill("input[name=name]", soft);
    page.selectOption("select[name=purpose]", "ENCRYPT_DECRYPT");
    page.selectOption("select[name=protection]", "SOFTWARE");
    page.click("#create");
    expectDone(page);
    assertEquals(0, page.locator("#v1 a:has-text('TPM attestation')").count());
    var r = page.navigate(consoleUrl + "/keys/" + NAMESPACE + "/" + soft + "/versions/1/attestation");
    assertEquals(501, r.status(), page.innerText("body"));
    assertTrue(page.textContent("#error").startsWith("Not available for this key"), page.textContent("#error"));
    page.context().close();
  }

  @Test
  @Order(4)
  void admin_importsAKeyThroughAnImportJob_withTheWrappingKeyDownloaded() throws Exception {
    Page page = signIn("console-admin", "console-admin-pw");
    String name = "byok" + UUID.randomUUID().toString().substring(0, 6);
    page.navigate(consoleUrl + "/keys/new?namespace=" + NAMESPACE);
    page.fill("input[name=name]", name);
    page.selectOption("select[name=purpose]", "ENCRYPT_DECRYPT");
    page.selectOption("select[name=protection]", "SOFTWARE");
    page.check("input[name=importOnly]");
    page.click("#create");
    expectDone(page);
    assertEquals("none", page.textContent("#primary-version").trim(), "an import-only key starts with no version");

    page.click("#import-version");
    page.waitForSelector("#jobs");
    String job = "job-" + name;
    page.fill("input[name=jobId]", job);
    page.selectOption("select[name=method]", "RSA_OAEP_3072_SHA256_AES_256");
    page.selectOption("select[name=protection]", "SOFTWARE");
    page.click("#create-job");
    expectDone(page);
    assertEquals("ACTIVE", page.textContent("#job-state").trim());
    com.microsoft.playwright.Download pem = page.waitForDownload(() -> page.click("#wrapping-key"));
    assertEquals(job + "-wrapping.pem", pem.suggestedFilename());
    java.security.PublicKey wrapping = ImportWrap.publicKey(Files.readString(pem.path()));
    assertEquals(3072, ((java.security.interfaces.RSAPublicKey) wrapping).getModulus().bitLength());
    shot(page, "import-job");

    // an upload without the page's CSRF token is refused before anything is called
    List<?> forged = postForm(page, "/import-jobs/" + NAMESPACE + "/" + job + "/import", Map.of("key", name,
        "algorithm", "AES_256_GCM"), true);
    assertEquals(403, ((Number) forged.get(0)).intValue(), String.valueOf(forged.get(1)));

    // a file that is not wrapped for this job: the service's reason on the job's page, nothing imported
    Path garbage = dir.resolve("garbage.bin");
    Files.write(garbage, new byte[600]);
    assertEquals(name, page.inputValue("input[name=key]"), "the key the admin came from");
    page.selectOption("select[name=algorithm]", "AES_256_GCM");
    page.setInputFiles("input[name=wrapped]", garbage);
    page.click("#import");
    try {
      page.waitForSelector("#error", new Page.WaitForSelectorOptions().setTimeout(20_000));
    } catch (com.microsoft.playwright.PlaywrightException e) {
      shot(page, "failed-import");
      throw new AssertionError("no error shown at " + page.url() + ": " + page.innerText("body"), e);
    }
    assertTrue(page.textContent("#error").startsWith("Invalid input") || page.textContent("#error")
        .startsWith("Not possible"), page.textContent("#error"));

    byte[] material = new byte[32];
    new java.security.SecureRandom().nextBytes(material);
    Path wrapped = dir.resolve(name + ".wrapped");
    Files.write(wrapped, ImportWrap.wrap(wrapping, material).toByteArray());
    page.fill("input[name=key]", name);
    page.selectOption("select[name=algorithm]", "AES_256_GCM");
    page.setInputFiles("input[name=wrapped]", wrapped);
    page.click("#import");
    expectDone(page);
    assertEquals("Version imported.", page.textContent(".done").trim());
    assertEquals("v1", page.textContent("#primary-version").trim());
    assertTrue(page.textContent("#v1").contains("imported"), page.textContent("#v1"));
    page.context().close();
  }

  /** Readable at phone width: no page scrolls sideways at 390 px (tables become stacked rows). */
  @Test
  @Order(4)
  void pagesFitAPhoneScreen() {
    Page page = signIn("console-admin", "console-admin-pw");
    page.setViewportSize(390, 844);
    for (String path : List.of("/", "/keys?namespace=" + NAMESPACE, "/keys/" + NAMESPACE + "/" + KEY,
        "/keys/" + NAMESPACE + "/" + KEY + "/versions/2/attestation", "/policies", "/audit", "/import-jobs",
        "/keys/new")) {
      var r = page.navigate(consoleUrl + path);
      assertEquals(200, r.status(), path + ": " + page.innerText("body"));
      Number overflow = (Number) page.evaluate(
          "() => document.documentElement.scrollWidth - document.documentElement.clientWidth");
      assertTrue(overflow.intValue() <= 0, path + " scrolls sideways by " + overflow + " px at 390 px");
    }
    page.navigate(consoleUrl + "/keys/" + NAMESPACE + "/" + KEY);
    shot(page, "key-phone");
    page.context().close();
  }

  @Test
  @Order(5)
  void forgedPostWithoutCsrf_refused_headersPresent_logoutEndsTheSession() {
    Page page = signIn("console-admin", "console-admin-pw");
    var answer = page.navigate(consoleUrl + "/keys");
    String csp = answer.headers().get("content-security-policy");
    assertNotNull(csp, "a Content-Security-Policy");
    assertTrue(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
        csp);
    assertEquals("DENY", answer.headers().get("x-frame-options"));
    for (Cookie c : page.context().cookies()) {
      if (c.name.startsWith("q_session")) {
        assertTrue(c.httpOnly, "the session cookie is HttpOnly");
        assertTrue(c.secure, "the session cookie is Secure");
        assertTrue(c.value.length() < 100, "the session cookie holds an id, not tokens");
      }
    }
    assertFalse(page.content().contains("eyJ"), "no token in a page");

    List<?> forged = post(page, "/keys/" + NAMESPACE + "/" + KEY + "/rotate", null);
    assertEquals(403, ((Number) forged.get(0)).intValue(), String.valueOf(forged.get(1)));
    assertTrue(String.valueOf(forged.get(1)).contains("CSRF"), String.valueOf(forged.get(1)));
    APIResponse crossSite = page.request().post(consoleUrl + "/keys/" + NAMESPACE + "/" + KEY + "/rotate",
        RequestOptions.create().setHeader("Origin", "https://evil.example").setMaxRedirects(0));
    assertEquals(403, crossSite.status());

    List<Cookie> before = page.context().cookies();
    page.click("text=Sign out");
    try {
      page.waitForURL(consoleUrl + "/signed-out**", new Page.WaitForURLOptions().setTimeout(20_000));
    } catch (com.microsoft.playwright.PlaywrightException e) {
      throw new AssertionError("not signed out: at " + page.url() + ": " + page.innerText("body"), e);
    }
    shot(page, "signed-out");
    page.goBack();
    page.navigate(consoleUrl + "/keys");
    page.waitForSelector("#username");
    assertTrue(page.url().startsWith(keycloak.issuer(REALM)), "signed out: the login page, " + page.url());
    // the old session cookie, put back by hand, is worth nothing either
    BrowserContext replay = browser.newContext();
    replay.addCookies(before.stream().filter(c -> c.name.startsWith("q_session")).toList());
    Page again = replay.newPage();
    var replayed = again.navigate(consoleUrl + "/keys");
    try {
      again.waitForSelector("#username", new Page.WaitForSelectorOptions().setTimeout(15_000));
    } catch (com.microsoft.playwright.PlaywrightException e) {
      throw new AssertionError("an old cookie: " + replayed.status() + " at " + again.url() + ": "
          + again.innerText("body"), e);
    }
    assertTrue(again.url().startsWith(keycloak.issuer(REALM)), "an old cookie gives the login page: " + again.url());
    replay.close();
    page.context().close();
  }

  static String read(Path p) throws IOException {
    return Files.readString(p, StandardCharsets.UTF_8);
  }

  /**
   * Tokens are refreshed by the console when the access token expires, and when the session
   * itself expires (Keycloak's client session idle time) the console starts a new sign-in at
   * Keycloak instead of calling the services with a dead token. The console client's lifetimes are
   * shortened for this test only (5 s tokens, 20 s idle session: sign-in through Chromium on a busy machine
   * takes seconds of it before the first wait) and restored after it.
   */
  @Test
  @Order(6)
  void expiredTokensAreRefreshed_andAnExpiredSessionSignsInAgain() throws Exception {
    com.fasterxml.jackson.databind.node.ObjectNode client = (com.fasterxml.jackson.databind.node.ObjectNode)
        keycloak.adminGet("/realms/" + REALM + "/clients?clientId=tpmkms-console").get(0);
    String path = "/realms/" + REALM + "/clients/" + client.path("id").asText();
    com.fasterxml.jackson.databind.node.ObjectNode original = client.deepCopy();
    com.fasterxml.jackson.databind.node.ObjectNode attributes =
        (com.fasterxml.jackson.databind.node.ObjectNode) client.with("attributes");
    attributes.put("access.token.lifespan", "5");
    attributes.put("client.session.idle.timeout", "20");
    keycloak.adminPut(path, client);
    try {
      Page page = signIn("console-admin", "console-admin-pw");
      List<String> authRequests = new java.util.concurrent.CopyOnWriteArrayList<>();
      page.onRequest(r -> {
        if (r.url().contains("/protocol/openid-connect/auth")) authRequests.add(r.url());
      });
      Thread.sleep(7_000); // the access token has expired
      var keys = page.navigate(consoleUrl + "/keys?namespace=" + NAMESPACE);
      assertEquals(200, keys.status(), page.innerText("body"));
      assertTrue(page.textContent("table").contains(FULL), "the key service accepted a refreshed token: "
          + page.textContent("main"));
      assertTrue(authRequests.isEmpty(), "refreshed without a new sign-in: " + authRequests);

      Thread.sleep(22_000); // the session (and its refresh token) idle past 20 s
      page.navigate(consoleUrl + "/keys?namespace=" + NAMESPACE);
      page.waitForURL(consoleUrl + "/**");
      page.waitForSelector("main h1");
      assertEquals(1, authRequests.size(), "a new authorization request at Keycloak: " + authRequests);
      assertTrue(authRequests.get(0).contains("code_challenge="), "with PKCE: " + authRequests.get(0));
      // Keycloak's own SSO session (30 min) still holds, so it answers without asking for the password
      assertTrue(page.textContent("table").contains(FULL), page.textContent("main"));
      page.context().close();
    } finally {
      keycloak.adminPut(path, original);
    }
  }
}

package io.tpmkms.devtools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.jboss.logging.Logger;

/**
 * A real Keycloak (the {@code keycloak-quarkus-dist} zip from Maven Central, no Docker) run as a child
 * process in dev mode, for tests and the local run script.
 *
 * <p>The distribution is unpacked once into {@code ${TPMKMS_CACHE_DIR:-~/.cache/tpmkms}/keycloak-VERSION}
 * and shared by all instances. Everything an instance writes (H2 database, transaction log, its log file,
 * the generated bootstrap-admin password) lives in the instance directory the caller chooses: a fresh
 * temporary directory gives an empty Keycloak, a persistent one keeps realms and users across runs. Only
 * runtime options vary between instances, so the dist is built (Quarkus re-augmentation, ~50 s) once, on
 * its first start, under a lock; later starts skip it.
 *
 * <p>The admin helpers talk to the admin REST API with a master-realm token of the bootstrap admin; the
 * token helpers call the realm's token endpoint. Passwords, secrets and tokens never reach the log or an
 * exception message. Not for production: dev mode, plain HTTP on 127.0.0.1.
 */
public final class Keycloak implements AutoCloseable {
  /** The distribution version; the pom's {@code keycloak.version} fetches the same one. */
  public static final String VERSION = "26.7.3";
  /** The master-realm bootstrap admin. Its password is generated per instance directory. */
  public static final String ADMIN_USERNAME = "admin";

  private static final Logger LOG = Logger.getLogger(Keycloak.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ReentrantLock JVM_DIST_LOCK = new ReentrantLock();
  private static final String BUILT_MARKER = ".tpmkms-dev-built";
  /**
   * Appended to kc.sh's JVM options ({@code -Dtpmkms.keycloak.jvm-options=...} replaces it, empty for none):
   * C1 only, because C2 compiling at startup starves a small, busy machine (measured on 2 cores under load:
   * start 13-19 s instead of 43-50 s); a test or dev Keycloak never runs long enough to need C2.
   */
  private static final String DEFAULT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1";
  /**
   * Runs kc.sh ({@code $2...}) and stops it when the JVM ({@code $1}) is gone: a test JVM killed with
   * SIGKILL runs no shutdown hook, and an orphaned Keycloak would hold half a GiB and its ports.
   */
  private static final String WATCHDOG = "parent=$1; shift; \"$@\" & kc=$!; "
      + "(while kill -0 \"$parent\" 2>/dev/null && kill -0 $kc 2>/dev/null; do sleep 2; done; "
      + "kill -TERM $kc 2>/dev/null) & "
      + "wait $kc";
  private static final Path DB_FILE = Path.of("h2", "keycloakdb.mv.db");
  private static final String ADMIN_PASSWORD_FILE = "admin-password";
  private static final Duration START_TIMEOUT = Duration.ofSeconds(
      Long.getLong("tpmkms.keycloak.start-timeout-seconds", 300));

  /** Access token, refresh token (null when none) and the access token's lifetime. */
  public record Tokens(String accessToken, String refreshToken, long expiresInSeconds) {
    /** Never prints the tokens. */
    @Override
    public String toString() {
      return "Tokens[expiresInSeconds=" + expiresInSeconds + ", refreshToken=" + (refreshToken != null) + "]";
    }
  }

  /** A refused or failed HTTP call: the status and Keycloak's error, never a credential. */
  public static final class KeycloakException extends IllegalStateException {
    private final int status;
    private final String error;

    KeycloakException(String message, int status, String error) {
      super(message);
      this.status = status;
      this.error = error;
    }

    /** The HTTP status, or 0 when there was no response. */
    public int status() { return status; }

    /** The OAuth {@code error} code (e.g. {@code invalid_grant}) or admin API error text, may be null. */
    public String error() { return error; }
  }

  private final Path instanceDir;
  private final int port;
  private final int managementPort;
  private final Path log;
  private final String adminPassword;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  private final Process process;
  private final Thread shutdownHook;
  private String adminToken;
  private long adminTokenExpiresAt;

  private Keycloak(Path instanceDir, int port, int managementPort, Path log, String adminPassword,
      Process process) {
    this.instanceDir = instanceDir;
    this.port = port;
    this.managementPort = managementPort;
    this.log = log;
    this.adminPassword = adminPassword;
    this.process = process;
    this.shutdownHook = new Thread(this::stopProcess, "keycloak-shutdown");
    Runtime.getRuntime().addShutdownHook(shutdownHook);
  }

  // ---------------------------------------------------------------------------------------------------
  // distribution

  /** The zip in the local Maven repository ({@code -Dmaven.repo.local}, default {@code ~/.m2/repository}). */
  public static Path distributionZip() {
    String repo = System.getProperty("maven.repo.local");
    Path base = repo != null && !repo.isBlank() ? Path.of(repo)
        : Path.of(System.getProperty("user.home"), ".m2", "repository");
    return base.resolve(Path.of("org", "keycloak", "keycloak-quarkus-dist", VERSION,
        "keycloak-quarkus-dist-" + VERSION + ".zip"));
  }

  /** {@code ${TPMKMS_CACHE_DIR:-~/.cache/tpmkms}}: outside target/, so {@code mvn clean} keeps the unpacked dist. */
  public static Path cacheDir() {
    String dir = System.getenv("TPMKMS_CACHE_DIR");
    return dir != null && !dir.isBlank() ? Path.of(dir)
        : Path.of(System.getProperty("user.home"), ".cache", "tpmkms");
  }

  /**
   * The unpacked distribution ({@code keycloak-VERSION} in the cache dir), unpacking it first if needed:
   * into a temporary sibling, then renamed atomically, under a file lock so parallel JVMs unpack once.
   */
  public static Path distribution() throws IOException {
    Path home = cacheDir().resolve("keycloak-" + VERSION);
    if (Files.isRegularFile(home.resolve("bin/kc.sh"))) return home;
    try (DistLock ignored = DistLock.acquire()) {
      if (Files.isRegularFile(home.resolve("bin/kc.sh"))) return home;
      Path zip = distributionZip();
      if (!Files.isRegularFile(zip)) {
        throw new IllegalStateException("Keycloak distribution not found: " + zip
            + " (run `./mvnw -B -pl dev-tools package` once: it downloads org.keycloak:keycloak-quarkus-dist:"
            + VERSION + ":zip)");
      }
      Path tmp = Files.createTempDirectory(home.getParent(), home.getFileName() + ".unpacking-");
      try {
        long t0 = System.nanoTime();
        unzip(zip, tmp);
        for (String script : List.of("kc.sh", "kcadm.sh", "kcreg.sh")) {
          Path p = tmp.resolve("bin").resolve(script);
          if (Files.exists(p)) p.toFile().setExecutable(true);
        }
        try {
          Files.move(tmp, home, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(tmp, home);
        }
        LOG.infof("Keycloak %s unpacked into %s in %d ms", VERSION, home, (System.nanoTime() - t0) / 1_000_000);
      } finally {
        if (Files.exists(tmp)) deleteTree(tmp);
      }
      return home;
    }
  }

  /** Unzips, dropping the archive's top directory ({@code keycloak-VERSION/}). */
  private static void unzip(Path zip, Path target) throws IOException {
    Path root = target.toAbsolutePath().normalize();
    try (ZipFile zf = new ZipFile(zip.toFile())) {
      var entries = zf.entries();
      while (entries.hasMoreElements()) {
        ZipEntry e = entries.nextElement();
        String name = e.getName();
        int slash = name.indexOf('/');
        if (slash < 0 || slash == name.length() - 1) continue;
        Path out = root.resolve(name.substring(slash + 1)).normalize();
        if (!out.startsWith(root)) throw new IOException("zip entry outside the target: " + name);
        if (e.isDirectory()) {
          Files.createDirectories(out);
        } else {
          Files.createDirectories(out.getParent());
          try (InputStream in = zf.getInputStream(e)) {
            Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
          }
        }
      }
    }
  }

  /** One lock per cache dir: a JVM-wide lock (FileLock is per process) plus the file lock. */
  private static final class DistLock implements AutoCloseable {
    private final FileChannel channel;
    private final FileLock lock;

    private DistLock(FileChannel channel, FileLock lock) {
      this.channel = channel;
      this.lock = lock;
    }

    static DistLock acquire() throws IOException {
      Files.createDirectories(cacheDir());
      JVM_DIST_LOCK.lock();
      FileChannel ch = null;
      try {
        ch = FileChannel.open(cacheDir().resolve("keycloak-" + VERSION + ".lock"),
            StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        return new DistLock(ch, ch.lock());
      } catch (IOException | RuntimeException e) {
        if (ch != null) ch.close();
        JVM_DIST_LOCK.unlock();
        throw e;
      }
    }

    @Override
    public void close() throws IOException {
      try {
        lock.release();
        channel.close();
      } finally {
        JVM_DIST_LOCK.unlock();
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // process

  /** Starts an instance on two free ports (HTTP and management), seeded from the template when empty. */
  public static Keycloak start(Path instanceDir) throws IOException, InterruptedException {
    int[] ports = ServiceProcess.freePorts(2);
    return start(instanceDir, ports[0], ports[1]);
  }

  /** {@link #start(Path, int, int, boolean)} seeded from the template when the instance dir is empty. */
  public static Keycloak start(Path instanceDir, int httpPort, int managementPort)
      throws IOException, InterruptedException {
    return start(instanceDir, httpPort, managementPort, true);
  }

  /**
   * Starts Keycloak in dev mode on {@code 127.0.0.1:httpPort} with its data in {@code instanceDir} (created
   * if missing; reused if it holds a database) and waits until the master realm answers. The management
   * port is set because its default, 9000, is a gRPC port of ours.
   *
   * <p>An instance dir without a database starts from an empty database: with {@code fromTemplate}, a copy
   * of a database that holds only the master realm (made once per distribution, kept next to it) — its
   * schema creation and master-realm setup take most of a fresh start (measured under load: 66 s against
   * 29-37 s with C2, 9-12 s with the default C1-only JVM options); the
   * copies share the master realm's keys and bootstrap-admin password, fine for tests, while a long-lived
   * dir (the run script) should pass false to get its own. The first start of a fresh distribution also
   * builds it; that start holds the dist lock so parallel first starts do not build it twice.
   */
  public static Keycloak start(Path instanceDir, int httpPort, int managementPort, boolean fromTemplate)
      throws IOException, InterruptedException {
    Path home = distribution();
    Path dir = Files.createDirectories(instanceDir).toAbsolutePath().normalize();
    if (fromTemplate && !Files.exists(dir.resolve(DB_FILE))) {
      Path template = template(home);
      Files.createDirectories(dir.resolve(DB_FILE).getParent());
      Files.copy(template.resolve(DB_FILE), dir.resolve(DB_FILE));
      Files.copy(template.resolve(ADMIN_PASSWORD_FILE), dir.resolve(ADMIN_PASSWORD_FILE),
          StandardCopyOption.COPY_ATTRIBUTES, StandardCopyOption.REPLACE_EXISTING);
    }
    return startBuilt(home, dir, httpPort, managementPort);
  }

  private static Keycloak startBuilt(Path home, Path dir, int httpPort, int managementPort)
      throws IOException, InterruptedException {
    String adminPassword = adminPassword(dir);
    Path log = dir.resolve("keycloak.log");
    if (Files.exists(home.resolve(BUILT_MARKER))) {
      return launch(home, dir, httpPort, managementPort, log, adminPassword);
    }
    try (DistLock ignored = DistLock.acquire()) {
      if (!Files.exists(home.resolve(BUILT_MARKER))) {
        LOG.infof("first start of %s: Keycloak builds itself for dev mode first (about a minute)", home);
      }
      Keycloak kc = launch(home, dir, httpPort, managementPort, log, adminPassword);
      Files.writeString(home.resolve(BUILT_MARKER), "built by the first start-dev\n");
      return kc;
    }
  }

  /**
   * The template instance dir (master realm only, cleanly shut down), made on first use under the dist lock:
   * started once, stopped, then renamed into place so a half-made template is never used.
   */
  private static Path template(Path home) throws IOException, InterruptedException {
    Path template = home.resolve("tpmkms-template");
    if (Files.exists(template.resolve(DB_FILE))) return template;
    try (DistLock ignored = DistLock.acquire()) {
      if (Files.exists(template.resolve(DB_FILE))) return template;
      Path tmp = Files.createTempDirectory(home, "tpmkms-template.tmp-");
      try {
        LOG.infof("making the empty-instance template in %s (once per distribution)", template);
        int[] ports = ServiceProcess.freePorts(2);
        Keycloak kc = launch(home, tmp, ports[0], ports[1], tmp.resolve("keycloak.log"), adminPassword(tmp));
        Files.writeString(home.resolve(BUILT_MARKER), "built by the first start-dev\n");
        boolean clean;
        try {
          clean = kc.stopProcess();
        } finally {
          kc.close();
        }
        if (!clean) throw new IllegalStateException("Keycloak did not stop within 20 s; no template made");
        Files.deleteIfExists(tmp.resolve("keycloak.log"));
        try {
          Files.move(tmp, template, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(tmp, template);
        }
      } finally {
        if (Files.exists(tmp)) deleteTree(tmp);
      }
      return template;
    }
  }

  private static Keycloak launch(Path home, Path dir, int httpPort, int managementPort, Path log,
      String adminPassword) throws IOException, InterruptedException {
    String base = "http://127.0.0.1:" + httpPort;
    List<String> cmd = List.of("/bin/sh", "-c", WATCHDOG, "keycloak-watchdog",
        String.valueOf(ProcessHandle.current().pid()),
        "/bin/sh", home.resolve("bin/kc.sh").toString(), "start-dev",
        "--http-host=127.0.0.1",
        "--http-port=" + httpPort,
        "--http-management-port=" + managementPort,
        "--hostname=" + base,
        // runtime options only: a build-time option that differs between runs rebuilds the dist (~50 s)
        "--db-url=jdbc:h2:file:" + dir.resolve("h2").resolve("keycloakdb") + ";NON_KEYWORDS=VALUE",
        "-Dquarkus.transaction-manager.object-store.directory=" + dir.resolve("transaction-logs"));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    Map<String, String> env = pb.environment();
    // the caller's Keycloak/Quarkus/JVM settings must not leak in (a KC_DB would rebuild the shared dist)
    env.keySet().removeIf(k -> k.startsWith("KC_") || k.startsWith("QUARKUS_") || k.startsWith("JAVA_OPTS")
        || k.equals("JAVA_ADD_OPENS") || k.equals("JAVA_LOCALE") || k.equals("DEBUG") || k.equals("DEBUG_PORT"));
    env.put("JAVA_HOME", System.getProperty("java.home"));
    env.remove("JAVA");
    String jvmOptions = System.getProperty("tpmkms.keycloak.jvm-options", DEFAULT_JVM_OPTIONS);
    if (!jvmOptions.isBlank()) env.put("JAVA_OPTS_APPEND", jvmOptions);
    env.put("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN_USERNAME);
    env.put("KC_BOOTSTRAP_ADMIN_PASSWORD", adminPassword);
    long offset = Files.exists(log) ? Files.size(log) : 0;
    long t0 = System.nanoTime();
    Process p = pb.start();
    Keycloak kc = new Keycloak(dir, httpPort, managementPort, log, adminPassword, p);
    try {
      kc.awaitReady(offset);
      LOG.infof("Keycloak ready on %s in %d ms (instance %s)", base, (System.nanoTime() - t0) / 1_000_000, dir);
      return kc;
    } catch (IOException | InterruptedException | RuntimeException e) {
      kc.close();
      throw e;
    }
  }

  private void awaitReady(long logOffset) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    URI probe = URI.create(baseUrl() + "/realms/master/.well-known/openid-configuration");
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("Keycloak exited with status " + process.exitValue()
            + " before it was ready; log " + log + ":\n" + logTail(logOffset, 60));
      }
      try {
        HttpResponse<Void> r = http.send(HttpRequest.newBuilder(probe).timeout(Duration.ofSeconds(5)).GET().build(),
            HttpResponse.BodyHandlers.discarding());
        if (r.statusCode() == 200) return;
      } catch (IOException notYet) {
        // not listening yet
      }
      Thread.sleep(250);
    }
    throw new IllegalStateException("Keycloak not ready after " + START_TIMEOUT.toSeconds() + " s; log " + log
        + ":\n" + logTail(logOffset, 60));
  }

  /** The last lines of this instance's log written since the offset. */
  private String logTail(long offset, int lines) {
    try {
      byte[] all = Files.readAllBytes(log);
      int from = (int) Math.min(offset, all.length);
      List<String> l = new String(all, from, all.length - from, StandardCharsets.UTF_8).lines().toList();
      return String.join("\n", l.subList(Math.max(0, l.size() - lines), l.size()));
    } catch (IOException e) {
      return "(log unreadable: " + e + ")";
    }
  }

  /** The bootstrap admin password, generated on the instance dir's first use and kept (owner-only) there. */
  private static String adminPassword(Path dir) throws IOException {
    Path file = dir.resolve(ADMIN_PASSWORD_FILE);
    if (Files.exists(file)) return Files.readString(file).trim();
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    String pw = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    Path tmp = dir.resolve("admin-password.tmp");
    Files.deleteIfExists(tmp);
    Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(tmp, pw + "\n");
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    return pw;
  }

  /** Blocks until the Keycloak process ends; its exit status. */
  public int waitFor() throws InterruptedException {
    return process.waitFor();
  }

  public boolean isAlive() { return process.isAlive(); }

  /** Stops Keycloak and every process it spawned (kc.sh runs java as a child). */
  @Override
  public void close() {
    stopProcess();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException shuttingDown) {
      // called from the hook itself or during JVM shutdown
    }
  }

  /** SIGTERM to the tree, up to 20 s for a clean exit, then SIGKILL; true when no SIGKILL was needed. */
  private boolean stopProcess() {
    List<ProcessHandle> tree = new ArrayList<>(process.descendants().toList());
    tree.add(process.toHandle());
    tree.forEach(ProcessHandle::destroy);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    for (ProcessHandle h : tree) {
      long left = deadline - System.nanoTime();
      try {
        if (left > 0) h.onExit().get(left, TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      } catch (Exception timeout) {
        // killed below
      }
    }
    List<ProcessHandle> alive = tree.stream().filter(ProcessHandle::isAlive).toList();
    alive.forEach(ProcessHandle::destroyForcibly);
    return alive.isEmpty();
  }

  // ---------------------------------------------------------------------------------------------------
  // addresses

  /** {@code http://127.0.0.1:PORT} */
  public String baseUrl() { return "http://127.0.0.1:" + port; }

  /** The {@code iss} of the realm's tokens: {@code http://127.0.0.1:PORT/realms/REALM} (fixed hostname). */
  public String issuer(String realm) { return baseUrl() + "/realms/" + realm; }

  public int port() { return port; }

  public int managementPort() { return managementPort; }

  public Path instanceDir() { return instanceDir; }

  /** This instance's stdout/stderr (appended across restarts of the same instance dir). */
  public Path log() { return log; }

  // ---------------------------------------------------------------------------------------------------
  // admin REST

  /** Whether the realm exists. */
  public boolean realmExists(String realm) throws IOException, InterruptedException {
    return admin("GET", "/realms/" + seg(realm), null, true) != null;
  }

  /**
   * Imports the realm file unless a realm of that name exists already (then nothing changes and this returns
   * false): skipping keeps users and secrets created since in a persistent instance. Use
   * {@link #deleteRealm} first to replace it.
   */
  public boolean importRealm(Path json) throws IOException, InterruptedException {
    return importRealm(json, null);
  }

  /**
   * The same realm file under another name (null: the file's own), e.g. a second issuer for "token from
   * another realm" tests. Renaming strips every {@code id} in the file, so the copy does not collide with
   * the original's ids. Skips (false) if the target realm exists.
   */
  public boolean importRealm(Path json, String asRealmName) throws IOException, InterruptedException {
    JsonNode tree = JSON.readTree(json.toFile());
    if (!(tree instanceof ObjectNode rep) || !rep.hasNonNull("realm")) {
      throw new IllegalArgumentException("not a realm representation (no \"realm\"): " + json);
    }
    if (asRealmName != null && !asRealmName.equals(rep.get("realm").asText())) {
      stripIds(rep);
      rep.put("realm", asRealmName);
    }
    String name = rep.get("realm").asText();
    if (realmExists(name)) return false;
    admin("POST", "/realms", rep, false);
    return true;
  }

  private static void stripIds(JsonNode node) {
    if (node instanceof ObjectNode o) {
      o.remove("id");
      o.remove("containerId");
      o.forEach(Keycloak::stripIds);
    } else if (node instanceof ArrayNode a) {
      a.forEach(Keycloak::stripIds);
    }
  }

  /** Deletes the realm (no-op when absent). */
  public void deleteRealm(String realm) throws IOException, InterruptedException {
    admin("DELETE", "/realms/" + seg(realm), null, true);
  }

  /**
   * Creates an enabled user with a permanent password, the realm roles and the groups (full paths, which must
   * exist), and returns its id, the {@code sub} of its tokens. E-mail and names are filled in because
   * Keycloak refuses the password grant to users whose profile lacks them.
   */
  public String createUser(String realm, String username, String password, List<String> realmRoles,
      List<String> groups) throws IOException, InterruptedException {
    ObjectNode user = JSON.createObjectNode()
        .put("username", username)
        .put("enabled", true)
        .put("email", username + "@tpmkms.invalid")
        .put("emailVerified", true)
        .put("firstName", username)
        .put("lastName", "test");
    user.putArray("credentials").addObject().put("type", "password").put("value", password)
        .put("temporary", false);
    ArrayNode g = user.putArray("groups");
    for (String path : groups == null ? List.<String>of() : groups) g.add(path);
    String id = adminPost("/realms/" + seg(realm) + "/users", user);
    if (realmRoles != null && !realmRoles.isEmpty()) {
      ArrayNode roles = JSON.createArrayNode();
      for (String role : realmRoles) roles.add(adminGet("/realms/" + seg(realm) + "/roles/" + seg(role)));
      adminPost("/realms/" + seg(realm) + "/users/" + seg(id) + "/role-mappings/realm", roles);
    }
    return id;
  }

  /** Creates the group (and missing parents) for a full path such as {@code /payments/eu}; returns its id. */
  public String createGroup(String realm, String path) throws IOException, InterruptedException {
    String[] names = Stream.of(path.split("/")).filter(s -> !s.isEmpty()).toArray(String[]::new);
    if (names.length == 0) throw new IllegalArgumentException("empty group path: " + path);
    String parentId = null;
    StringBuilder sofar = new StringBuilder();
    for (String name : names) {
      sofar.append('/').append(name);
      JsonNode existing = admin("GET", "/realms/" + seg(realm) + "/group-by-path" + pathSegs(sofar.toString()),
          null, true);
      if (existing != null) {
        parentId = existing.get("id").asText();
        continue;
      }
      ObjectNode rep = JSON.createObjectNode().put("name", name);
      parentId = adminPost(parentId == null ? "/realms/" + seg(realm) + "/groups"
          : "/realms/" + seg(realm) + "/groups/" + seg(parentId) + "/children", rep);
    }
    return parentId;
  }

  /** Creates a client from its representation (a Map or JsonNode); returns its internal id. */
  public String createClient(String realm, Object representation) throws IOException, InterruptedException {
    return adminPost("/realms/" + seg(realm) + "/clients", representation);
  }

  /** GET on the admin API, {@code path} below {@code /admin} (e.g. {@code /realms/tpmkms/users}). */
  public JsonNode adminGet(String path) throws IOException, InterruptedException {
    return admin("GET", path, null, false);
  }

  /** POST; returns the created resource's id (the last segment of {@code Location}), or null. */
  public String adminPost(String path, Object body) throws IOException, InterruptedException {
    HttpResponse<String> r = adminCall("POST", path, body);
    return r.headers().firstValue("Location").map(l -> l.substring(l.lastIndexOf('/') + 1)).orElse(null);
  }

  /** PUT (updates). */
  public void adminPut(String path, Object body) throws IOException, InterruptedException {
    adminCall("PUT", path, body);
  }

  /** DELETE. */
  public void adminDelete(String path) throws IOException, InterruptedException {
    adminCall("DELETE", path, null);
  }

  private JsonNode admin(String method, String path, Object body, boolean nullIfNotFound)
      throws IOException, InterruptedException {
    try {
      HttpResponse<String> r = adminCall(method, path, body);
      return r.body() == null || r.body().isBlank() ? JSON.nullNode() : JSON.readTree(r.body());
    } catch (KeycloakException e) {
      if (nullIfNotFound && e.status() == 404) return null;
      throw e;
    }
  }

  private HttpResponse<String> adminCall(String method, String path, Object body)
      throws IOException, InterruptedException {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(baseUrl() + "/admin" + path))
        .timeout(Duration.ofSeconds(60))
        .header("Authorization", "Bearer " + adminToken())
        .header("Accept", "application/json");
    if (body != null) {
      b.header("Content-Type", "application/json")
          .method(method, HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)));
    } else {
      b.method(method, HttpRequest.BodyPublishers.noBody());
    }
    HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() / 100 != 2) {
      String err = errorText(r.body());
      throw new KeycloakException("Keycloak admin " + method + " " + path + ": HTTP " + r.statusCode()
          + (err != null ? " " + err : ""), r.statusCode(), err);
    }
    return r;
  }

  /** The admin API's error text ({@code errorMessage} / {@code error}), or null. Bodies are never echoed. */
  private static String errorText(String body) {
    try {
      JsonNode n = JSON.readTree(body == null ? "" : body);
      if (n == null) return null;
      for (String f : List.of("errorMessage", "error_description", "error")) {
        if (n.hasNonNull(f)) return n.get(f).asText();
      }
    } catch (IOException notJson) {
      // fall through
    }
    return null;
  }

  /** A master-realm admin token (admin-cli, password grant), renewed shortly before it expires. */
  private synchronized String adminToken() throws IOException, InterruptedException {
    if (adminToken == null || System.nanoTime() > adminTokenExpiresAt) {
      Tokens t;
      try {
        t = passwordGrant("master", "admin-cli", null, ADMIN_USERNAME, adminPassword);
      } catch (KeycloakException e) {
        throw new KeycloakException(e.getMessage() + " (the bootstrap admin's password is in "
            + instanceDir.resolve("admin-password") + "; a database kept from another setup needs a fresh "
            + "instance dir)", e.status(), e.error());
      }
      adminToken = t.accessToken();
      adminTokenExpiresAt = System.nanoTime() + TimeUnit.SECONDS.toNanos(Math.max(1, t.expiresInSeconds() - 15));
    }
    return adminToken;
  }

  // ---------------------------------------------------------------------------------------------------
  // tokens

  /** Resource owner password grant; {@code clientSecret} null for a public client. */
  public Tokens passwordGrant(String realm, String clientId, String clientSecret, String username,
      String password) throws IOException, InterruptedException {
    Map<String, String> form = new LinkedHashMap<>();
    form.put("grant_type", "password");
    form.put("client_id", clientId);
    if (clientSecret != null) form.put("client_secret", clientSecret);
    form.put("username", username);
    form.put("password", password);
    form.put("scope", "openid");
    return token(realm, clientId, form);
  }

  /** Client credentials grant of a confidential client with a service account. */
  public Tokens clientCredentials(String realm, String clientId, String clientSecret)
      throws IOException, InterruptedException {
    Map<String, String> form = new LinkedHashMap<>();
    form.put("grant_type", "client_credentials");
    form.put("client_id", clientId);
    form.put("client_secret", Objects.requireNonNull(clientSecret, "clientSecret"));
    return token(realm, clientId, form);
  }

  private Tokens token(String realm, String clientId, Map<String, String> form)
      throws IOException, InterruptedException {
    String body = form.entrySet().stream()
        .map(e -> enc(e.getKey()) + "=" + enc(e.getValue()))
        .collect(Collectors.joining("&"));
    HttpRequest req = HttpRequest.newBuilder(URI.create(issuer(seg(realm)) + "/protocol/openid-connect/token"))
        .timeout(Duration.ofSeconds(60))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body))
        .build();
    HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
    JsonNode n;
    try {
      n = JSON.readTree(r.body() == null ? "" : r.body());
    } catch (IOException e) {
      n = null;
    }
    if (r.statusCode() != 200 || n == null || !n.hasNonNull("access_token")) {
      String error = n != null && n.hasNonNull("error") ? n.get("error").asText() : null;
      String desc = n != null && n.hasNonNull("error_description") ? n.get("error_description").asText() : null;
      throw new KeycloakException("token request (" + form.get("grant_type") + ") to realm " + realm
          + " for client " + clientId + " refused: HTTP " + r.statusCode()
          + (error != null ? " " + error : "") + (desc != null ? " (" + desc + ")" : ""), r.statusCode(), error);
    }
    return new Tokens(n.get("access_token").asText(),
        n.hasNonNull("refresh_token") ? n.get("refresh_token").asText() : null,
        n.path("expires_in").asLong());
  }

  /** The payload of a JWT, decoded but NOT verified: for assertions on tokens this class obtained. */
  public static JsonNode claims(String jwt) {
    String[] parts = jwt.split("\\.");
    if (parts.length < 2) throw new IllegalArgumentException("not a JWT");
    try {
      return JSON.readTree(Base64.getUrlDecoder().decode(parts[1]));
    } catch (IOException e) {
      throw new UncheckedIOException("JWT payload is not JSON", e);
    }
  }

  // ---------------------------------------------------------------------------------------------------

  private static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  /** One URL path segment. */
  private static String seg(String s) {
    return enc(s).replace("+", "%20");
  }

  /** {@code /a/b} with each segment encoded. */
  private static String pathSegs(String path) {
    return Stream.of(path.split("/")).filter(s -> !s.isEmpty()).map(Keycloak::seg)
        .collect(Collectors.joining("/", "/", ""));
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
    }
  }
}

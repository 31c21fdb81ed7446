package io.tpmkms.images;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What is in the image tarballs: a valid OCI layout whose blobs match their digests, the
 * configuration (user, entrypoint, working directory, labels, environment, ports), the services',
 * the console's and the CLI's files byte for byte as their modules packaged them, and nothing that should not be
 * there (files writable by others, set-id bits, keys and other secrets).
 */
class ImagesContentIT {
  static final String APP_USER = "10001:10001";
  /** The only entries that may belong to the application user: its empty state directories. */
  static final Set<String> USER_OWNED = Set.of("home/tpmkms/", "var/lib/tpmkms/", "var/lib/swtpm/", "run/swtpm/");
  /** Names of key material and local state that never belong in an image. */
  static final Pattern SECRET = Pattern.compile(
      "(?i).*(\\.key|\\.pem|\\.p12|\\.pfx|\\.jks|\\.keystore|\\.software|id_rsa|id_ecdsa|id_ed25519|"
          + "software-root.*|audit-root.*|/\\.tpmkms/.*|\\.git/.*|postmaster\\.pid)$");

  private static final Map<String, OciImage> OPENED = new ConcurrentHashMap<>();
  private static Path work;

  @BeforeAll
  static void workDir() throws IOException {
    work = Images.workDir("content");
  }

  @AfterAll
  static void removeUnpacked() throws IOException {
    Images.deleteUnpacked(work);
  }

  static List<String> images() {
    return Images.all();
  }

  static OciImage image(String name) throws IOException {
    OciImage image = OPENED.get(name);
    if (image == null) {
      image = OciImage.open(name, work);
      OPENED.put(name, image);
    }
    return image;
  }

  @Test
  void everyImageIsThere() {
    for (String name : Images.all()) {
      assertTrue(Files.isRegularFile(Images.tarball(name)), Images.tarball(name) + " was not built");
    }
  }

  @ParameterizedTest
  @MethodSource("images")
  void ociLayoutWithVerifiedDigests(String name) throws IOException {
    OciImage image = image(name);
    JsonNode layout = OciImage.JSON.readTree(image.layout.resolve("oci-layout").toFile());
    assertEquals("1.0.0", layout.path("imageLayoutVersion").asText());
    assertEquals("application/vnd.oci.image.index.v1+json", image.index.path("mediaType").asText());
    JsonNode descriptor = image.index.path("manifests").get(0);
    assertEquals("application/vnd.oci.image.manifest.v1+json", descriptor.path("mediaType").asText());
    assertEquals("tpmkms/" + name + ":" + Images.version(),
        descriptor.path("annotations").path("org.opencontainers.image.ref.name").asText());
    assertEquals(descriptor.path("size").asLong(), Files.size(image.blob(descriptor.path("digest").asText())));

    try (Stream<Path> blobs = Files.list(image.layout.resolve("blobs/sha256"))) {
      for (Path blob : blobs.toList()) {
        assertEquals(blob.getFileName().toString(), OciImage.sha256(blob), name + ": blob content does not match its digest");
      }
    }
    assertEquals("application/vnd.oci.image.config.v1+json", image.manifest.path("config").path("mediaType").asText());
    assertEquals(image.manifest.path("config").path("size").asLong(),
        Files.size(image.blob(image.manifest.path("config").path("digest").asText())));
    JsonNode diffIds = image.config.path("rootfs").path("diff_ids");
    JsonNode layers = image.manifest.path("layers");
    assertEquals(layers.size(), diffIds.size());
    for (int i = 0; i < layers.size(); i++) {
      JsonNode layer = layers.get(i);
      assertEquals("application/vnd.oci.image.layer.v1.tar+gzip", layer.path("mediaType").asText());
      Path blob = image.blob(layer.path("digest").asText());
      assertEquals(layer.path("size").asLong(), Files.size(blob));
      assertEquals(diffIds.get(i).asText(), "sha256:" + OciImage.uncompressedSha256(blob), name + ": diff_id of layer " + i);
    }
  }

  @ParameterizedTest
  @MethodSource("images")
  void configuration(String name) throws IOException {
    OciImage image = image(name);
    JsonNode config = image.config.path("config");
    assertEquals("linux", image.config.path("os").asText());
    assertEquals("amd64", image.config.path("architecture").asText());
    assertEquals(APP_USER, config.path("User").asText());

    JsonNode labels = config.path("Labels");
    assertEquals("tpmkms-" + name, labels.path("org.opencontainers.image.title").asText());
    assertEquals(Images.version(), labels.path("org.opencontainers.image.version").asText());
    assertTrue(labels.path("org.opencontainers.image.source").asText().startsWith("https://"));
    assertFalse(labels.path("org.opencontainers.image.licenses").asText().isBlank());
    gitHead().ifPresent(head -> assertEquals(head, labels.path("org.opencontainers.image.revision").asText()));

    Map<String, String> env = env(config);
    List<String> entrypoint = strings(config.path("Entrypoint"));
    Set<String> ports = new TreeSet<>();
    config.path("ExposedPorts").fieldNames().forEachRemaining(ports::add);

    if (Images.SERVICES.containsKey(name)) {
      assertEquals(List.of("/opt/java/bin/java", "-jar", "/deployments/quarkus-run.jar"), entrypoint);
      assertEquals("/deployments", config.path("WorkingDir").asText());
      assertEquals(Set.of(Images.SERVICES.get(name).port() + "/tcp", Images.PROBE_PORT + "/tcp"), ports);
      assertEquals("/var/lib/tpmkms", env.get("TPMKMS_DATA_DIR"));
      assertEquals(List.of("system", "java-runtime", "users", "dependencies", "application"), image.layerNames());
    } else if (name.equals(Images.CONSOLE)) {
      // a Quarkus application like the services: one port, its pages; no state directory
      assertEquals(List.of("/opt/java/bin/java", "-jar", "/deployments/quarkus-run.jar"), entrypoint);
      assertEquals("/deployments", config.path("WorkingDir").asText());
      assertEquals(Set.of(Images.CONSOLE_PORT + "/tcp"), ports);
      assertFalse(env.containsKey("TPMKMS_DATA_DIR"), env.toString());
      assertEquals(List.of("system", "java-runtime", "users", "dependencies", "application"), image.layerNames());
    } else if (name.equals("cli")) {
      assertEquals("/opt/java/bin/java", entrypoint.get(0));
      assertEquals(List.of("-jar", "/deployments/tpmkms-cli.jar"), entrypoint.subList(entrypoint.size() - 2, entrypoint.size()));
      assertEquals("/home/tpmkms", config.path("WorkingDir").asText());
      assertEquals(Set.of(), ports);
      assertEquals(List.of("system", "java-runtime", "users", "application"), image.layerNames());
    } else if (name.equals("kms-plugin")) {
      assertEquals(List.of("/opt/java/bin/java", "-XX:MaxRAMPercentage=75", "-jar", "/deployments/tpmkms-kms-plugin.jar"),
          entrypoint);
      assertEquals(Set.of(), ports, "a UNIX socket, no port");
      assertEquals(List.of("system", "java-runtime", "users", "application"), image.layerNames());
    } else {
      assertEquals(List.of("/usr/bin/swtpm", "socket", "--tpm2", "--tpmstate", "dir=/var/lib/swtpm",
          "--server", "type=unixio,path=/run/swtpm/tpm.sock", "--ctrl", "type=unixio,path=/run/swtpm/ctrl.sock",
          "--flags", "not-need-init,startup-clear"), entrypoint);
      assertEquals(List.of("system", "users", "swtpm"), image.layerNames());
    }
    if (!name.equals("swtpm")) {
      assertEquals("/opt/java", env.get("JAVA_HOME"));
      assertTrue(env.get("PATH").startsWith("/opt/java/bin:"), env.get("PATH"));
    }
  }

  @ParameterizedTest
  @MethodSource("images")
  void applicationFilesAreTheModulesOwn(String name) throws IOException {
    OciImage image = image(name);
    Map<String, String> files = new TreeMap<>(); // path in the image -> sha256, upper layers win
    Map<String, Integer> modes = new HashMap<>();
    image.forEachEntry((entry, content) -> {
      if (entry.isFile()) {
        files.put("/" + entry.getName(), OciImage.sha256(content));
        modes.put("/" + entry.getName(), entry.getMode() & 07777);
      }
    });
    Path root = Images.projectRoot();
    Map<String, String> expected = new TreeMap<>();
    if (Images.quarkusApp(name)) {
      Path app = root.resolve(name).resolve("target/quarkus-app");
      try (Stream<Path> walk = Files.walk(app)) {
        for (Path file : walk.filter(Files::isRegularFile).toList()) {
          String relative = app.relativize(file).toString();
          if (relative.equals("quarkus-app-dependencies.txt")) continue;
          expected.put("/deployments/" + relative, OciImage.sha256(file));
        }
      }
      assertTrue(expected.containsKey("/deployments/quarkus-run.jar"));
    } else if (name.equals("cli")) {
      expected.put("/deployments/tpmkms-cli.jar", OciImage.sha256(root.resolve("cli/target/tpmkms-cli.jar")));
      assertEquals(0755, modes.get("/usr/local/bin/tpmkms"));
    } else if (name.equals("kms-plugin")) {
      expected.put("/deployments/tpmkms-kms-plugin.jar",
          OciImage.sha256(root.resolve("kms-plugin/target/tpmkms-kms-plugin.jar")));
    } else {
      expected.put("/usr/bin/swtpm", OciImage.sha256(Path.of("/usr/bin/swtpm")));
      expected.put("/usr/bin/swtpm_ioctl", OciImage.sha256(Path.of("/usr/bin/swtpm_ioctl")));
    }
    Map<String, String> actual = new TreeMap<>();
    files.forEach((path, sha) -> {
      if (path.startsWith("/deployments/") || path.startsWith("/usr/bin/swtpm")) actual.put(path, sha);
    });
    assertEquals(expected, actual, name + ": the image's application files differ from the module's");

    if (!name.equals("swtpm")) {
      assertEquals(0755, modes.get("/opt/java/bin/java"), "/opt/java/bin/java is executable");
      assertTrue(files.containsKey("/opt/java/lib/server/libjvm.so"));
      assertTrue(files.containsKey("/bin/sh"), "a /bin/sh");
    }
    assertTrue(files.containsKey("/lib64/ld-linux-x86-64.so.2"), "the dynamic loader");
    assertTrue(files.keySet().stream().anyMatch(p -> p.endsWith("/libc.so.6")), "libc");
  }

  @ParameterizedTest
  @MethodSource("images")
  void nothingWritableOrSecret(String name) throws IOException {
    OciImage image = image(name);
    List<String> problems = new ArrayList<>();
    Map<String, String> etc = new HashMap<>();
    image.forEachEntry((entry, content) -> {
      String path = entry.getName();
      int mode = entry.getMode() & 07777;
      if (entry.getModTime().getTime() != 1000) problems.add(path + ": modification time is not fixed");
      if ((mode & 06000) != 0) problems.add(path + ": set-id bit");
      if (path.contains(".wh.")) problems.add(path + ": a whiteout (images are built from scratch)");
      if (entry.getLongUserId() == 0 && entry.getLongGroupId() == 0) {
        boolean stickyTmp = path.equals("tmp/") && entry.isDirectory() && mode == 01777;
        if ((mode & 0002) != 0 && !stickyTmp) problems.add(path + ": owned by root and writable by others");
      } else if (!(entry.getLongUserId() == 10001 && entry.getLongGroupId() == 10001 && entry.isDirectory()
          && USER_OWNED.contains(path) && mode == 0700)) {
        problems.add(path + ": owned by " + entry.getLongUserId() + ":" + entry.getLongGroupId() + " mode "
            + Integer.toOctalString(mode));
      }
      if (!entry.isDirectory() && !entry.isFile()) problems.add(path + ": neither file nor directory");
      if (SECRET.matcher("/" + path).matches()) problems.add(path + ": looks like key material or local state");
      if (path.equals("etc/passwd") || path.equals("etc/group") || path.equals("tmp/")) {
        etc.put(path, entry.isDirectory() ? Integer.toOctalString(mode)
            : new String(content.readAllBytes(), StandardCharsets.UTF_8));
      }
    });
    assertEquals(List.of(), problems, name);
    assertTrue(etc.get("etc/passwd").lines().anyMatch(l -> l.startsWith("tpmkms:x:10001:10001:")), etc.get("etc/passwd"));
    assertTrue(etc.get("etc/group").lines().anyMatch(l -> l.startsWith("tpmkms:x:10001:")), etc.get("etc/group"));
    assertEquals("1777", etc.get("tmp/"), "/tmp is drwxrwxrwt");
  }

  private static Map<String, String> env(JsonNode config) {
    Map<String, String> env = new HashMap<>();
    config.path("Env").forEach(e -> {
      String s = e.asText();
      env.put(s.substring(0, s.indexOf('=')), s.substring(s.indexOf('=') + 1));
    });
    return env;
  }

  static List<String> strings(JsonNode array) {
    List<String> list = new ArrayList<>();
    array.forEach(n -> list.add(n.asText()));
    return list;
  }

  private static java.util.Optional<String> gitHead() {
    try {
      Process git = new ProcessBuilder("git", "-C", Images.projectRoot().toString(), "log", "-1", "--format=%H")
          .redirectErrorStream(true).start();
      String out = new String(git.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      return git.waitFor() == 0 && out.matches("[0-9a-f]{40}") ? java.util.Optional.of(out) : java.util.Optional.empty();
    } catch (IOException | InterruptedException ex) {
      return java.util.Optional.empty();
    }
  }
}

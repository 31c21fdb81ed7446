package io.tpmkms.images;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** What the ITs know about the build: where the tarballs are, which images, their modules. */
public final class Images {
  /** The services: image name to gRPC port and the variables that move their ports. */
  static final Map<String, Service> SERVICES = Map.of(
      "key-service", new Service(9090, "TPMKMS_GRPC_PORT", "TPMKMS_HTTP_PORT"),
      "policy-service", new Service(9092, "TPMKMS_POLICY_GRPC_PORT", "TPMKMS_POLICY_HTTP_PORT"),
      "audit-service", new Service(9091, "TPMKMS_AUDIT_GRPC_PORT", "TPMKMS_AUDIT_HTTP_PORT"));
  static final int PROBE_PORT = 9190;
  /** The admin console: image admin-console (module admin-console), its HTTP port. */
  static final String CONSOLE = "admin-console";
  static final int CONSOLE_PORT = 8095;

  record Service(int port, String grpcPortVariable, String httpPortVariable) {}

  /** Whether the image is a Quarkus application's (a service's or the console's): {@code <name>/target/quarkus-app}. */
  static boolean quarkusApp(String name) {
    return SERVICES.containsKey(name) || name.equals(CONSOLE);
  }

  private Images() {}

  public static Path dir() {
    return Path.of(property("images.dir")).toAbsolutePath().normalize();
  }

  static Path projectRoot() {
    return Path.of(property("images.project-root")).toAbsolutePath().normalize();
  }

  public static String version() {
    return property("images.version");
  }

  static boolean swtpm() {
    return Boolean.parseBoolean(property("images.swtpm"));
  }

  static Path tarball(String name) {
    return dir().resolve("tpmkms-" + name + ".tar");
  }

  /** Every image this build makes: the services, the console, the CLI, the KMS plugin and (unless -Dimages.swtpm=false) swtpm. */
  static List<String> all() {
    List<String> names = new ArrayList<>(List.of("key-service", "policy-service", "audit-service", CONSOLE, "cli",
        "kms-plugin"));
    if (swtpm()) names.add("swtpm");
    return names;
  }

  /** A scratch directory under target/ for one test class. */
  public static Path workDir(String name) throws IOException {
    Path dir = dir().getParent().resolve("it-work").resolve(name);
    deleteTree(dir);
    return Files.createDirectories(dir);
  }

  /** Removes the unpacked layouts and root file systems under {@code dir} (~1 GiB), keeping the logs. */
  public static void deleteUnpacked(Path dir) throws IOException {
    if (dir == null || !Files.isDirectory(dir)) return;
    try (var children = Files.list(dir)) {
      for (Path child : children.toList()) {
        if (Files.isDirectory(child, java.nio.file.LinkOption.NOFOLLOW_LINKS)) deleteTree(child);
      }
    }
  }

  static String property(String name) {
    String value = System.getProperty(name);
    if (value == null) throw new IllegalStateException(name + " is not set: run the ITs through failsafe (./mvnw verify)");
    return value;
  }

  public static void deleteTree(Path dir) throws IOException {
    JavaRuntime.deleteTree(dir);
  }
}

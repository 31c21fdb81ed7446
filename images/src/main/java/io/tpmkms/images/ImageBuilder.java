package io.tpmkms.images;

import com.google.cloud.tools.jib.api.Containerizer;
import com.google.cloud.tools.jib.api.ImageReference;
import com.google.cloud.tools.jib.api.Jib;
import com.google.cloud.tools.jib.api.JibContainerBuilder;
import com.google.cloud.tools.jib.api.LogEvent;
import com.google.cloud.tools.jib.api.TarImage;
import com.google.cloud.tools.jib.api.buildplan.AbsoluteUnixPath;
import com.google.cloud.tools.jib.api.buildplan.FileEntriesLayer;
import com.google.cloud.tools.jib.api.buildplan.ImageFormat;
import com.google.cloud.tools.jib.api.buildplan.Port;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Builds the OCI image tarballs of the key, policy and audit services, the admin console, the CLI and swtpm in the
 * images module's {@code package} phase: no Docker, no registry, no base image (FROM scratch). The
 * layers are system (the glibc closure and /bin/sh), java-runtime (a jlinked /opt/java), users,
 * dependencies and application; docs/images.md tells the rest.
 */
public final class ImageBuilder {
  static final String JAVA_HOME = "/opt/java";
  static final String DEPLOYMENTS = "/deployments";
  static final int PROBE_PORT = 9190;
  /** The admin console's HTTP port (its pages and its probes; no gRPC, no probe port). */
  static final int CONSOLE_PORT = 8095;
  /**
   * glibc's C.UTF-8 locale (Debian's libc-bin): without it setlocale(LC_ALL, "C.UTF-8") fails, the
   * embedded PostgreSQL's initdb refuses to run, and Java's sun.jnu.encoding falls back to ASCII.
   */
  static final Path UTF8_LOCALE = Path.of("/usr/lib/locale/C.utf8");

  private final Options options;
  private final GitInfo git;

  ImageBuilder(Options options) {
    this.options = options;
    this.git = GitInfo.of(options.projectRoot());
  }

  public static void main(String[] args) throws Exception {
    long start = System.nanoTime();
    new ImageBuilder(Options.parse(args)).buildAll();
    System.out.printf(Locale.ROOT, "images: built in %.1f s%n", (System.nanoTime() - start) / 1e9);
  }

  void buildAll() throws Exception {
    Path swtpm = options.swtpmBinary();
    if (options.swtpm() && !Files.isExecutable(swtpm)) {
      throw new IOException(swtpm + " is missing: the tpmkms/swtpm image packs the host's swtpm. Install it"
          + " (apt-get install swtpm swtpm-tools: swtpm_ioctl is its probe) or build without that image:"
          + " -Dimages.swtpm=false");
    }
    Files.createDirectories(options.output());
    Files.createDirectories(options.work());

    Path runtime = JavaRuntime.ensure(options.work());
    FileEntriesLayer system = javaSystemLayer(runtime);
    FileEntriesLayer javaRuntime = Layers.tree("java-runtime", runtime, JAVA_HOME);

    List<ImageSpec> images = new ArrayList<>();
    images.add(service("key-service", 9090, "key service: keys rooted in a TPM 2.0", system, javaRuntime));
    images.add(service("policy-service", 9092, "policy service: role bindings and Cedar policies", system,
        javaRuntime));
    images.add(service("audit-service", 9091, "audit service: a hash chain with signed checkpoints",
        system, javaRuntime));
    images.add(console(system, javaRuntime));
    images.add(cli(system, javaRuntime));
    images.add(kmsPlugin(system, javaRuntime));
    Path swtpmTar = options.output().resolve("tpmkms-swtpm.tar");
    if (options.swtpm()) {
      images.add(swtpm(swtpm));
    } else {
      Files.deleteIfExists(swtpmTar); // no stale image for the ITs to find
      System.out.println("images: tpmkms/swtpm skipped (-Dimages.swtpm=false)");
    }
    List<Path> tarballs = new ArrayList<>();
    for (ImageSpec image : images) {
      Path tar = containerize(image);
      tarballs.add(tar);
      System.out.printf(Locale.ROOT, "images: %-28s %-36s %6.1f MiB%n", tar.getFileName(),
          image.repository() + ":" + options.version(), Files.size(tar) / (1024.0 * 1024.0));
    }
    LayerCache.prune(layerCache(), tarballs);
  }

  /** The glibc closure of the runtime and of /bin/sh, and /bin/sh itself. */
  private FileEntriesLayer javaSystemLayer(Path runtime) throws IOException {
    Path shell = Shell.find();
    List<Path> binaries = new ArrayList<>();
    binaries.add(shell);
    try (Stream<Path> walk = Files.walk(runtime)) {
      walk.filter(Files::isRegularFile).sorted().forEach(binaries::add);
    }
    SortedMap<String, Path> files = new TreeMap<>(SharedLibraries.closureOf(binaries, runtime));
    files.put("/bin/sh", shell);
    if (Files.isDirectory(UTF8_LOCALE)) files.put(UTF8_LOCALE.toString(), UTF8_LOCALE);
    return Layers.trees("system", files);
  }

  private ImageSpec service(String name, int port, String description, FileEntriesLayer system,
      FileEntriesLayer javaRuntime) throws IOException {
    Map<String, String> env = javaEnvironment();
    env.put("TPMKMS_DATA_DIR", "/var/lib/tpmkms");
    return quarkusApp(name, "tpmkms " + description, system, javaRuntime, env, List.of("/var/lib/tpmkms"),
        List.of(port, PROBE_PORT));
  }

  /**
   * The admin console (module admin-console): a Quarkus application like the services, with no state
   * directory (its sessions live in memory) and one port, its HTTP pages.
   */
  private ImageSpec console(FileEntriesLayer system, FileEntriesLayer javaRuntime) throws IOException {
    return quarkusApp("admin-console", "tpmkms admin console: web pages behind Keycloak SSO", system, javaRuntime,
        javaEnvironment(), List.of(), List.of(CONSOLE_PORT));
  }

  /** A Quarkus fast-jar of the module {@code name} ({@code <name>/target/quarkus-app}), run by the jlinked Java. */
  private ImageSpec quarkusApp(String name, String description, FileEntriesLayer system,
      FileEntriesLayer javaRuntime, Map<String, String> env, List<String> stateDirs, List<Integer> ports)
      throws IOException {
    Path app = options.projectRoot().resolve(name).resolve("target/quarkus-app");
    if (!Files.isRegularFile(app.resolve("quarkus-run.jar"))) {
      throw new IOException(app.resolve("quarkus-run.jar") + " is missing: package " + name
          + " first (./mvnw -pl images -am package)");
    }
    Map<String, Path> application = new LinkedHashMap<>();
    application.put(DEPLOYMENTS + "/app", app.resolve("app"));
    application.put(DEPLOYMENTS + "/quarkus", app.resolve("quarkus"));
    application.put(DEPLOYMENTS + "/quarkus-run.jar", app.resolve("quarkus-run.jar"));
    return new ImageSpec(name, description,
        List.of(system, javaRuntime, Layers.users(options.work(), stateDirs),
            Layers.tree("dependencies", app.resolve("lib"), DEPLOYMENTS + "/lib"),
            Layers.trees("application", application)),
        List.of(JAVA_HOME + "/bin/java", "-jar", DEPLOYMENTS + "/quarkus-run.jar"),
        DEPLOYMENTS, env, ports);
  }

  /** The CLI: its one shaded jar, run as ./tpmkms runs it (C1 only, serial GC: short-lived calls). */
  private ImageSpec cli(FileEntriesLayer system, FileEntriesLayer javaRuntime) throws IOException {
    Path jar = options.projectRoot().resolve("cli/target/tpmkms-cli.jar");
    if (!Files.isRegularFile(jar)) {
      throw new IOException(jar + " is missing: package the cli module first (./mvnw -pl images -am package)");
    }
    List<String> java = List.of(JAVA_HOME + "/bin/java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
        "-XX:-UsePerfData", "-jar", DEPLOYMENTS + "/tpmkms-cli.jar");
    Path wrapper = Layers.write(options.work().resolve("cli/tpmkms"),
        "#!/bin/sh\n# the tpmkms CLI (docs/cli.md)\nexec " + String.join(" ", java) + " \"$@\"\n");
    wrapper.toFile().setExecutable(true, false);
    Map<String, Path> application = new LinkedHashMap<>();
    application.put(DEPLOYMENTS + "/tpmkms-cli.jar", jar);
    application.put("/usr/local/bin/tpmkms", wrapper);
    Map<String, String> env = javaEnvironment();
    env.put("HOME", "/home/" + Layers.APP_USER_NAME);
    return new ImageSpec("cli", "tpmkms command-line client",
        List.of(system, javaRuntime, Layers.users(options.work(), List.of()),
            Layers.trees("application", application)),
        java, "/home/" + Layers.APP_USER_NAME, env, List.of());
  }

  /**
   * The Kubernetes KMS v2 plugin (module kms-plugin; docs/clients.md): its runnable jar; it listens on a
   * UNIX socket the API server shares through a hostPath, so no port.
   */
  private ImageSpec kmsPlugin(FileEntriesLayer system, FileEntriesLayer javaRuntime) throws IOException {
    Path jar = options.projectRoot().resolve("kms-plugin/target/tpmkms-kms-plugin.jar");
    if (!Files.isRegularFile(jar)) {
      throw new IOException(jar + " is missing: package the kms-plugin module first (./mvnw -pl images -am package)");
    }
    Map<String, Path> application = new LinkedHashMap<>();
    application.put(DEPLOYMENTS + "/tpmkms-kms-plugin.jar", jar);
    return new ImageSpec("kms-plugin", "tpmkms Kubernetes KMS v2 plugin: Secrets encrypted under a tpmkms key",
        List.of(system, javaRuntime, Layers.users(options.work(), List.of()),
            Layers.trees("application", application)),
        List.of(JAVA_HOME + "/bin/java", "-XX:MaxRAMPercentage=75", "-jar", DEPLOYMENTS + "/tpmkms-kms-plugin.jar"),
        DEPLOYMENTS, javaEnvironment(), List.of());
  }

  /**
   * The TPM 2.0 emulator as a sidecar: the host's swtpm, swtpm_ioctl (the probes ask the control socket
   * whether swtpm answers) and their libraries; no shell, no Java.
   */
  private ImageSpec swtpm(Path binary) throws IOException {
    Path ioctl = binary.resolveSibling("swtpm_ioctl");
    if (!Files.isExecutable(ioctl)) {
      throw new IOException(ioctl + " is missing: the swtpm image's probes need it (Debian: apt-get install swtpm-tools)");
    }
    SortedMap<String, Path> libraries = SharedLibraries.closureOf(List.of(binary, ioctl), null);
    Map<String, String> env = new LinkedHashMap<>();
    env.put("PATH", "/usr/bin:/bin");
    return new ImageSpec("swtpm", "swtpm, a TPM 2.0 emulator (development and test clusters)",
        List.of(Layers.files("system", libraries),
            Layers.users(options.work(), List.of("/var/lib/swtpm", "/run/swtpm")),
            Layers.files("swtpm", Map.of("/usr/bin/swtpm", binary, "/usr/bin/swtpm_ioctl", ioctl))),
        List.of("/usr/bin/swtpm", "socket", "--tpm2", "--tpmstate", "dir=/var/lib/swtpm",
            "--server", "type=unixio,path=/run/swtpm/tpm.sock",
            "--ctrl", "type=unixio,path=/run/swtpm/ctrl.sock",
            "--flags", "not-need-init,startup-clear"),
        "/var/lib/swtpm", env, List.of());
  }

  private static Map<String, String> javaEnvironment() {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("JAVA_HOME", JAVA_HOME);
    env.put("PATH", JAVA_HOME + "/bin:/usr/local/bin:/usr/bin:/bin");
    if (Files.isDirectory(UTF8_LOCALE)) env.put("LANG", "C.UTF-8");
    return env;
  }

  private Path containerize(ImageSpec image) throws Exception {
    Path tar = options.output().resolve(image.fileName());
    Files.deleteIfExists(tar);
    JibContainerBuilder builder = Jib.fromScratch()
        .setFormat(ImageFormat.OCI)
        .setCreationTime(git.commitTime())
        .setFileEntriesLayers(image.layers())
        .setUser(Layers.APP_USER)
        .setWorkingDirectory(AbsoluteUnixPath.get(image.workingDirectory()))
        .setEntrypoint(image.entrypoint())
        .setProgramArguments(List.of())
        .setEnvironment(image.environment())
        .setLabels(labels(image));
    for (int port : image.ports()) builder.addExposedPort(Port.tcp(port));
    Path cache = layerCache();
    Containerizer containerizer = Containerizer
        .to(TarImage.at(tar).named(ImageReference.parse(image.repository() + ":" + options.version())))
        .setBaseImageLayersCache(cache)
        .setApplicationLayersCache(cache)
        .setOfflineMode(true)
        .setToolName("tpmkms-images")
        .setToolVersion(options.version())
        .addEventHandler(LogEvent.class, ImageBuilder::log);
    builder.containerize(containerizer);
    return tar;
  }

  private Path layerCache() {
    return options.work().resolve("jib-cache");
  }

  private Map<String, String> labels(ImageSpec image) {
    Map<String, String> labels = new TreeMap<>();
    labels.put("org.opencontainers.image.title", "tpmkms-" + image.name());
    labels.put("org.opencontainers.image.description", image.description());
    labels.put("org.opencontainers.image.version", options.version());
    labels.put("org.opencontainers.image.source", options.source());
    labels.put("org.opencontainers.image.licenses", options.licenses());
    labels.put("org.opencontainers.image.created", git.commitTime().toString());
    git.revision().ifPresent(r -> labels.put("org.opencontainers.image.revision", r));
    return labels;
  }

  private static void log(LogEvent event) {
    if (event.getLevel() == LogEvent.Level.ERROR || event.getLevel() == LogEvent.Level.WARN) {
      System.out.println("images: jib " + event.getLevel().name().toLowerCase(Locale.ROOT) + ": " + event.getMessage());
    }
  }
}

package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.KeyToPath;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.tpmkms.images.Images;
import io.tpmkms.images.ImagesRunIT;
import io.tpmkms.images.OciImage;
import io.tpmkms.images.RootFs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs a rendered pod spec as a container runtime would, on this machine: each container from the
 * unpacked root file system of the image it names (our OCI tarballs), chrooted as its securityContext's
 * user, with exactly its command, arguments and environment ({@code secretKeyRef}s resolved from the
 * Secrets given, {@code $(VAR)} expanded) and its volumes bound at their mount paths (Secrets and
 * ConfigMaps written to files with their modes, emptyDirs and claims as directories owned by the pod's
 * fsGroup). The one change: pods share this machine's network, so a container port that several pods
 * declare (the probe port) is moved to a free port per pod, in the environment and in the probes alike.
 * Cluster DNS names resolve through an /etc/hosts bound into every container, as the kubelet does.
 */
final class PodRunner implements AutoCloseable {
  private static final Pattern REF = Pattern.compile("\\$\\(([A-Za-z_][A-Za-z0-9_]*)\\)");

  private final Path work;
  private final Map<String, Map<String, byte[]>> secrets;
  private final Map<String, Map<String, String>> configMaps;
  private final Path hosts;
  private final Map<String, RootFs> roots = new HashMap<>();
  private final List<Running> running = new ArrayList<>();

  /** A started container. */
  record Running(String pod, String container, Process process, RootFs root, Path log) {}

  /** A pod's volumes as directories here, and its port moves. */
  record Pod(String name, PodSpec spec, Map<String, Path> volumes, Map<Integer, Integer> ports) {}

  PodRunner(Path work, Map<String, Map<String, byte[]>> secrets, Map<String, Map<String, String>> configMaps,
      Path hosts) {
    this.work = work;
    this.secrets = secrets;
    this.configMaps = configMaps;
    this.hosts = hosts;
  }

  /**
   * The pod's volumes made here; {@code claims} are its PersistentVolumeClaims (a StatefulSet's
   * volumeClaimTemplates) by volume name, {@code ports} the container ports to move.
   */
  Pod prepare(String name, PodSpec spec, List<String> claims, Map<Integer, Integer> ports) throws Exception {
    long fsGroup = fsGroup(spec);
    Map<String, Path> volumes = new LinkedHashMap<>();
    Path base = Files.createDirectories(work.resolve("pods").resolve(name));
    List<Volume> all = spec.getVolumes() == null ? List.of() : spec.getVolumes();
    for (Volume v : all) {
      Path dir = Files.createDirectories(base.resolve(v.getName()));
      if (v.getSecret() != null) {
        Map<String, byte[]> data = secrets.get(v.getSecret().getSecretName());
        assertNotNull(data, name + ": volume " + v.getName() + " names Secret " + v.getSecret().getSecretName()
            + ", which does not exist");
        Map<String, byte[]> files = items(data, v.getSecret().getItems(), "Secret " + v.getSecret().getSecretName());
        writeFiles(dir, files, v.getSecret().getDefaultMode(), fsGroup);
      } else if (v.getConfigMap() != null) {
        Map<String, String> data = configMaps.get(v.getConfigMap().getName());
        assertNotNull(data, name + ": volume " + v.getName() + " names ConfigMap " + v.getConfigMap().getName()
            + ", which does not exist");
        Map<String, byte[]> bytes = new LinkedHashMap<>();
        data.forEach((k, val) -> bytes.put(k, val.getBytes(StandardCharsets.UTF_8)));
        writeFiles(dir, items(bytes, v.getConfigMap().getItems(), "ConfigMap"), v.getConfigMap().getDefaultMode(), fsGroup);
      } else if (v.getEmptyDir() != null) {
        ownedBy(dir, fsGroup);
      } else {
        fail(name + ": volume " + v.getName() + " of a kind this runner does not know: " + v);
      }
      volumes.put(v.getName(), dir);
    }
    for (String claim : claims) {
      Path dir = Files.createDirectories(base.resolve(claim));
      ownedBy(dir, fsGroup);
      volumes.put(claim, dir);
    }
    return new Pod(name, spec, volumes, ports);
  }

  /** Starts the container; it runs until stopped or until it exits. */
  Running start(Pod pod, Container c) throws Exception {
    String image = c.getImage();
    Matcher m = Pattern.compile("^(?:.*/)?tpmkms/([a-z-]+):(.+)$").matcher(image);
    assertTrue(m.matches(), pod.name() + "/" + c.getName() + ": not one of our images: " + image);
    assertEquals(Images.version(), m.group(2), image + ": the tag is the version just built");
    RootFs root = root(m.group(1));
    JsonNode config = imageConfig(m.group(1));

    Map<String, String> env = new LinkedHashMap<>();
    config.path("Env").forEach(e -> {
      String s = e.asText();
      env.put(s.substring(0, s.indexOf('=')), s.substring(s.indexOf('=') + 1));
    });
    // $(VAR) refers to variables the container spec defines before it, not to the image's
    Map<String, String> defined = new LinkedHashMap<>();
    for (EnvVar e : c.getEnv() == null ? List.<EnvVar>of() : c.getEnv()) {
      String value;
      if (e.getValueFrom() != null) {
        var ref = e.getValueFrom().getSecretKeyRef();
        assertNotNull(ref, pod.name() + "/" + c.getName() + ": " + e.getName() + " comes from something other than a Secret");
        Map<String, byte[]> secret = secrets.get(ref.getName());
        assertNotNull(secret, e.getName() + " names Secret " + ref.getName() + ", which does not exist");
        byte[] v = secret.get(ref.getKey());
        assertNotNull(v, e.getName() + " names key " + ref.getKey() + " of Secret " + ref.getName() + ", which it lacks");
        value = new String(v, StandardCharsets.UTF_8);
      } else {
        value = expand(e.getValue() == null ? "" : e.getValue(), defined);
      }
      value = movePorts(e.getName(), value, pod.ports());
      defined.put(e.getName(), value);
      env.put(e.getName(), value);
    }
    List<String> command = new ArrayList<>();
    if (c.getCommand() != null && !c.getCommand().isEmpty()) {
      command.addAll(c.getCommand());
    } else {
      config.path("Entrypoint").forEach(a -> command.add(a.asText()));
    }
    if (c.getArgs() != null && !c.getArgs().isEmpty()) {
      command.addAll(c.getArgs());
    } else if (c.getCommand() == null || c.getCommand().isEmpty()) {
      config.path("Cmd").forEach(a -> command.add(a.asText()));
    }
    command.replaceAll(a -> expand(a, defined));

    List<RootFs.Mount> mounts = new ArrayList<>();
    mounts.add(new RootFs.Mount(hosts, "/etc/hosts", true));
    for (VolumeMount vm : c.getVolumeMounts() == null ? List.<VolumeMount>of() : c.getVolumeMounts()) {
      Path dir = pod.volumes().get(vm.getName());
      assertNotNull(dir, pod.name() + "/" + c.getName() + " mounts volume " + vm.getName() + ", which the pod lacks");
      assertTrue(vm.getSubPathExpr() == null, "subPathExpr is not supported here: " + vm);
      if (vm.getSubPath() != null && !vm.getSubPath().isEmpty()) {
        // the kubelet makes a missing subPath directory, owned like the volume
        Path sub = dir.resolve(vm.getSubPath()).normalize();
        assertTrue(sub.startsWith(dir), "subPath outside its volume: " + vm.getSubPath());
        if (!Files.exists(sub)) {
          Files.createDirectories(sub);
          ownedBy(sub, fsGroup(pod.spec()));
        }
        dir = sub;
      }
      mounts.add(new RootFs.Mount(dir, vm.getMountPath(), Boolean.TRUE.equals(vm.getReadOnly())));
    }
    var sc = c.getSecurityContext();
    var psc = pod.spec().getSecurityContext();
    Long uid = sc != null && sc.getRunAsUser() != null ? sc.getRunAsUser() : psc == null ? null : psc.getRunAsUser();
    Long gid = sc != null && sc.getRunAsGroup() != null ? sc.getRunAsGroup() : psc == null ? null : psc.getRunAsGroup();
    assertNotNull(uid, c.getName() + ": runAsUser");
    String workDir = c.getWorkingDir() != null ? c.getWorkingDir() : config.path("WorkingDir").asText("/");
    if (workDir.isEmpty()) workDir = "/";
    Path log = Files.createDirectories(work.resolve("logs")).resolve(pod.name() + "-" + c.getName() + ".log");
    Files.deleteIfExists(log);
    boolean readOnlyRoot = sc != null && Boolean.TRUE.equals(sc.getReadOnlyRootFilesystem());
    Process p = root.command(command, workDir, env, log, mounts, uid, gid == null ? uid : gid, readOnlyRoot).start();
    Running r = new Running(pod.name(), c.getName(), p, root, log);
    running.add(r);
    return r;
  }

  /** Runs a container to its end (an init container, a helm test); returns its exit status. */
  int runToEnd(Pod pod, Container c, int timeoutSeconds) throws Exception {
    Running r = start(pod, c);
    if (!r.process().waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      // this container only: others of the same image (a sidecar its probe checks) keep running
      r.process().descendants().forEach(ProcessHandle::destroyForcibly);
      r.process().destroyForcibly();
      fail(pod.name() + "/" + c.getName() + " did not end within " + timeoutSeconds + " s:\n" + RootFs.tail(r.log(), 40));
    }
    return r.process().exitValue();
  }

  /** Waits for the container's startup probe as the kubelet would, failing with its log if it never passes. */
  void awaitStarted(Pod pod, Container c, Running r) throws Exception {
    Probe probe = c.getStartupProbe();
    assertNotNull(probe, c.getName() + " has a startup probe");
    int period = probe.getPeriodSeconds() == null ? 10 : probe.getPeriodSeconds();
    int attempts = probe.getFailureThreshold() == null ? 3 : probe.getFailureThreshold();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos((long) period * attempts);
    String last = "no answer";
    while (System.nanoTime() < deadline) {
      if (!r.process().isAlive()) {
        fail(pod.name() + "/" + c.getName() + " exited (" + r.process().exitValue() + ") before its startup probe passed:\n"
            + RootFs.tail(r.log(), 60));
      }
      if (probe.getGrpc() != null) {
        int port = pod.ports().getOrDefault(probe.getGrpc().getPort(), probe.getGrpc().getPort());
        ServingStatus s = ImagesRunIT.health(port, probe.getGrpc().getService() == null ? "" : probe.getGrpc().getService());
        if (s == ServingStatus.SERVING) return;
        last = String.valueOf(s);
      } else if (probe.getHttpGet() != null) {
        var get = probe.getHttpGet();
        int port = containerPort(c, get.getPort());
        port = pod.ports().getOrDefault(port, port);
        int status = httpStatus(port, get.getPath() == null ? "/" : get.getPath());
        if (status >= 200 && status < 400) return; // the kubelet's success range
        last = status < 0 ? "no answer" : "HTTP " + status;
      } else if (probe.getExec() != null) {
        Container check = new io.fabric8.kubernetes.api.model.ContainerBuilder(c).withCommand(probe.getExec().getCommand())
            .withArgs(List.of()).withName(c.getName() + "-probe").build();
        if (runToEnd(pod, check, 30) == 0) return;
        last = "exec probe failed";
      } else {
        fail(c.getName() + ": a startup probe this runner does not know: " + probe);
      }
      Thread.sleep(Math.min(1000, period * 1000L));
    }
    fail(pod.name() + "/" + c.getName() + ": startup probe did not pass (" + last + "):\n" + RootFs.tail(r.log(), 60));
  }

  /** A probe's port: a number, or the name of one of the container's ports. */
  static int containerPort(Container c, io.fabric8.kubernetes.api.model.IntOrString port) {
    if (port.getIntVal() != null) return port.getIntVal();
    return c.getPorts().stream().filter(p -> port.getStrVal().equals(p.getName())).findFirst()
        .orElseThrow(() -> new AssertionError(c.getName() + ": a probe names port " + port.getStrVal()
            + ", which the container does not declare")).getContainerPort();
  }

  /** The status of GET http://127.0.0.1:port/path as the kubelet's httpGet probe asks it; -1 while nothing answers. */
  static int httpStatus(int port, String path) throws InterruptedException {
    try {
      var client = java.net.http.HttpClient.newBuilder().connectTimeout(java.time.Duration.ofSeconds(2))
          .followRedirects(java.net.http.HttpClient.Redirect.NEVER).build();
      var request = java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + path))
          .timeout(java.time.Duration.ofSeconds(3)).header("User-Agent", "kube-probe/1.31").GET().build();
      return client.send(request, java.net.http.HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (IOException e) {
      return -1;
    }
  }

  private RootFs root(String image) throws Exception {
    RootFs root = roots.get(image);
    if (root == null) {
      OciImage oci = OciImage.open(image, work);
      root = RootFs.unpack(oci, work.resolve("roots").resolve(image));
      roots.put(image, root);
      configs.put(image, oci.config.path("config"));
    }
    return root;
  }

  private final Map<String, JsonNode> configs = new HashMap<>();

  private JsonNode imageConfig(String image) {
    return configs.get(image);
  }

  private static long fsGroup(PodSpec spec) {
    return spec.getSecurityContext() != null && spec.getSecurityContext().getFsGroup() != null
        ? spec.getSecurityContext().getFsGroup() : 0;
  }

  /** Kubernetes' $(VAR) expansion: defined variables are replaced, others left as written. */
  static String expand(String s, Map<String, String> env) {
    Matcher m = REF.matcher(s);
    StringBuilder b = new StringBuilder();
    while (m.find()) {
      String v = env.get(m.group(1));
      m.appendReplacement(b, Matcher.quoteReplacement(v == null ? m.group() : v));
    }
    m.appendTail(b);
    return b.toString();
  }

  /** A moved port in a variable whose value is that port. */
  private static String movePorts(String name, String value, Map<Integer, Integer> ports) {
    for (var p : ports.entrySet()) {
      if (name.endsWith("_PORT") && value.equals(Integer.toString(p.getKey()))) return Integer.toString(p.getValue());
    }
    return value;
  }

  private static Map<String, byte[]> items(Map<String, byte[]> data, List<KeyToPath> items, String what) {
    if (items == null || items.isEmpty()) return data;
    Map<String, byte[]> out = new LinkedHashMap<>();
    for (KeyToPath item : items) {
      byte[] v = data.get(item.getKey());
      assertNotNull(v, what + " lacks key " + item.getKey());
      out.put(item.getPath(), v);
    }
    return out;
  }

  private static void writeFiles(Path dir, Map<String, byte[]> files, Integer mode, long fsGroup) throws Exception {
    int m = mode == null ? 0644 : mode;
    for (var f : files.entrySet()) {
      Path file = dir.resolve(f.getKey());
      Files.createDirectories(file.getParent());
      Files.write(file, f.getValue());
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(perms(m)));
      chown(file, 0, fsGroup);
    }
  }

  private static void ownedBy(Path dir, long fsGroup) throws Exception {
    chown(dir, fsGroup == 0 ? 0 : 10001, fsGroup);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwx---"));
  }

  private static void chown(Path p, long uid, long gid) throws IOException, InterruptedException {
    Process c = new ProcessBuilder("chown", uid + ":" + gid, p.toString()).redirectErrorStream(true).start();
    String out = new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, c.waitFor(), "chown " + p + ": " + out);
  }

  private static String perms(int mode) {
    String rwx = "rwxrwxrwx";
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 9; i++) b.append((mode & (1 << (8 - i))) != 0 ? rwx.charAt(i) : '-');
    return b.toString();
  }

  @Override
  public void close() {
    for (int i = running.size() - 1; i >= 0; i--) {
      Running r = running.get(i);
      try {
        r.root().stop(r.process(), 20);
      } catch (Exception ignored) {
        // stopping the rest matters more
      }
    }
  }
}

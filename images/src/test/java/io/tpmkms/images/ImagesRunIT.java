package io.tpmkms.images;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The images run: each one's layers unpacked into a root file system and its entrypoint started
 * there as the container runtime would (chrooted as 10001:10001 when the test runs as root, as CI
 * does). The CLI prints its version and help; each service, with its embedded PostgreSQL (no
 * database URL given) and tokens off, answers SERVING on its gRPC port and on its probe port.
 */
public class ImagesRunIT {
  static final int START_SECONDS = 30;
  private static Path work;

  @BeforeAll
  static void workDir() throws IOException {
    work = Images.workDir("run");
  }

  @AfterAll
  static void removeUnpacked() throws IOException {
    Images.deleteUnpacked(work);
  }

  @Test
  void cliPrintsVersionAndHelp() throws Exception {
    OciImage image = OciImage.open("cli", work);
    RootFs root = RootFs.unpack(image, work.resolve("cli-root"));
    JsonNode config = image.config.path("config");
    List<String> entrypoint = ImagesContentIT.strings(config.path("Entrypoint"));

    String version = runToEnd(root, image, concat(entrypoint, "--version"), "cli-version");
    assertTrue(version.startsWith("tpmkms-cli "), version);
    String help = runToEnd(root, image, concat(entrypoint, "--help"), "cli-help");
    assertTrue(help.contains("Usage"), help);
    if (root.chroot) {
      // the wrapper on the PATH, through the image's own /bin/sh
      String wrapper = runToEnd(root, image, List.of("/usr/local/bin/tpmkms", "--version"), "cli-wrapper");
      assertEquals(version.strip(), wrapper.strip());
    }
  }

  @Test
  void kmsPluginPrintsItsHelp_andRefusesToStartWithoutAKey() throws Exception {
    OciImage image = OciImage.open("kms-plugin", work);
    RootFs root = RootFs.unpack(image, work.resolve("kms-plugin-root"));
    List<String> entrypoint = ImagesContentIT.strings(image.config.path("config").path("Entrypoint"));
    String help = runToEnd(root, image, concat(entrypoint, "--help"), "kms-plugin-help");
    assertTrue(help.contains("--socket") && help.contains("--key"), help);
    // no key, no tpmkms address: refused at once with a message, not a stack trace
    Path log = work.resolve("kms-plugin-unconfigured.log");
    JsonNode config = image.config.path("config");
    Process process = root.command(entrypoint, config.path("WorkingDir").asText(), imageEnv(config), log).start();
    if (!process.waitFor(START_SECONDS, TimeUnit.SECONDS)) {
      root.stop(process, 1);
      fail("the unconfigured plugin did not exit in " + START_SECONDS + " s:\n" + RootFs.tail(log, 20));
    }
    String output = Files.readString(log);
    assertTrue(process.exitValue() != 0, output);
    assertTrue(output.contains("--key") || output.contains("TPMKMS_KEY") || output.contains("--target"), output);
    assertFalse(output.contains("\tat "), "a stack trace: " + output);
  }

  @ParameterizedTest
  @ValueSource(strings = {"key-service", "policy-service", "audit-service"})
  void serviceStartsAndAnswersHealthChecks(String name) throws Exception {
    OciImage image = OciImage.open(name, work);
    RootFs root = RootFs.unpack(image, work.resolve(name + "-root"));
    JsonNode config = image.config.path("config");
    Images.Service service = Images.SERVICES.get(name);
    int grpcPort = freePort();
    int probePort = freePort();
    Map<String, String> env = imageEnv(config);
    env.put("TPMKMS_AUTH_MODE", "none"); // no Keycloak here; tokens are the system tests' subject
    env.put(service.grpcPortVariable(), Integer.toString(grpcPort));
    env.put(service.httpPortVariable(), Integer.toString(freePort()));
    env.put("TPMKMS_HEALTH_PORT", Integer.toString(probePort));
    env.put("TPMKMS_HEALTH_HOST", "127.0.0.1");
    Path log = work.resolve(name + ".log");
    Process process = root.command(ImagesContentIT.strings(config.path("Entrypoint")),
        config.path("WorkingDir").asText(), env, log).start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_SECONDS);
      ServingStatus probe = null;
      while (System.nanoTime() < deadline && process.isAlive()) {
        probe = health(probePort, "readiness");
        if (probe == ServingStatus.SERVING) break;
        Thread.sleep(250);
      }
      if (probe != ServingStatus.SERVING) {
        fail(name + " did not answer SERVING on its probe port within " + START_SECONDS + " s (alive: "
            + process.isAlive() + "); its log " + log + " ends:\n" + RootFs.tail(log, 40));
      }
      assertEquals(ServingStatus.SERVING, health(grpcPort, ""), name + ": health on the gRPC port");
      assertEquals(ServingStatus.SERVING, health(probePort, "liveness"), name + ": liveness");
      try (var state = Files.list(root.root.resolve("var/lib/tpmkms"))) {
        assertTrue(state.findAny().isPresent(), name + " keeps its state (database, root seed) in TPMKMS_DATA_DIR");
      }
    } finally {
      root.stop(process, 20);
    }
  }

  private static String runToEnd(RootFs root, OciImage image, List<String> command, String logName)
      throws Exception {
    Path log = work.resolve(logName + ".log");
    JsonNode config = image.config.path("config");
    Process process = root.command(command, config.path("WorkingDir").asText(), imageEnv(config), log).start();
    if (!process.waitFor(START_SECONDS, TimeUnit.SECONDS)) {
      root.stop(process, 1);
      fail(String.join(" ", command) + " did not finish in " + START_SECONDS + " s:\n" + RootFs.tail(log, 20));
    }
    String output = Files.readString(log);
    assertEquals(0, process.exitValue(), String.join(" ", command) + " failed:\n" + output);
    return output;
  }

  /** The status a health check answers, or null while nothing listens. */
  public static ServingStatus health(int port, String service) throws InterruptedException {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    try {
      return HealthGrpc.newBlockingStub(channel)
          .withDeadlineAfter(2, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService(service).build())
          .getStatus();
    } catch (StatusRuntimeException notYet) {
      return null;
    } finally {
      channel.shutdownNow().awaitTermination(2, TimeUnit.SECONDS);
    }
  }

  static Map<String, String> imageEnv(JsonNode config) {
    Map<String, String> env = new LinkedHashMap<>();
    config.path("Env").forEach(e -> {
      String s = e.asText();
      env.put(s.substring(0, s.indexOf('=')), s.substring(s.indexOf('=') + 1));
    });
    return env;
  }

  /** A free port below the ephemeral range (the service's own outgoing connections cannot take it first). */
  static int freePort() throws IOException {
    return io.tpmkms.devtools.ServiceProcess.freePorts(1)[0];
  }

  private static List<String> concat(List<String> list, String arg) {
    List<String> all = new ArrayList<>(list);
    all.add(arg);
    return all;
  }
}

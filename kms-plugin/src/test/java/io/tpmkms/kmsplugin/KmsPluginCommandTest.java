package io.tpmkms.kmsplugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.tpmkms.kmsplugin.v2.KeyManagementServiceGrpc;
import io.tpmkms.kmsplugin.v2.StatusRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The flags: checked before anything starts, and what they start. */
class KmsPluginCommandTest {
  @TempDir Path dir;

  static KmsPlugin parse(String... args) {
    KmsPlugin p = new KmsPlugin();
    new CommandLine(p).parseArgs(args);
    return p;
  }

  @Test
  void badSettings_exitStatus2_beforeAnythingStarts() {
    assertEquals(2, KmsPlugin.run("--target", "localhost:9090"), "no key");
    assertEquals(2, KmsPlugin.run("--target", "localhost:9090", "--key", "no-namespace"));
    assertEquals(2, KmsPlugin.run("--target", "localhost:9090", "--key", "a/b", "--oidc-issuer", "https://sso/realms/x"),
        "an issuer without a client");
    assertEquals(2, KmsPlugin.run("--target", "localhost:9090", "--key", "a/b", "--deadline", "soon"));
    assertEquals(2, KmsPlugin.run("--target", "localhost:9090", "--key", "a/b", "--plaintext", "--tls-ca-file", "/x"));
    assertEquals(2, KmsPlugin.run("--target", "localhost:9090", "--key", "a/b", "--tls-cert-file", "/x"),
        "a certificate without its key");
  }

  @Test
  void durations_shortOrIso() {
    assertEquals(Duration.ofMillis(500), KmsPlugin.duration("--d", "500ms"));
    assertEquals(Duration.ofSeconds(10), KmsPlugin.duration("--d", "10s"));
    assertEquals(Duration.ofMinutes(2), KmsPlugin.duration("--d", "2m"));
    assertEquals(Duration.ofSeconds(3), KmsPlugin.duration("--d", "PT3S"));
    assertThrows(IllegalArgumentException.class, () -> KmsPlugin.duration("--d", "0s"));
  }

  @Test
  void clientSecret_readFromItsFile_trimmed() throws Exception {
    Path secret = Files.writeString(dir.resolve("secret"), "s3cret\n");
    KmsPlugin.Settings s = parse("--target", "kms:9090", "--key", "a/b", "--oidc-issuer", "https://sso/realms/x",
        "--oidc-client-id", "kms-plugin", "--oidc-client-secret-file", secret.toString()).settings();
    assertEquals("client kms-plugin at https://sso/realms/x", s.tokensFrom());
    assertTrue(s.tls().tls(), "TLS unless --plaintext");
    assertEquals(Duration.ofSeconds(10), s.deadline());
    assertEquals(5, s.retries().maxAttempts());
    assertEquals(Path.of("/var/run/tpmkms/kms.sock"), s.socket());
    Path empty = Files.writeString(dir.resolve("empty"), "\n");
    assertThrows(IllegalArgumentException.class, () -> parse("--target", "kms:9090", "--key", "a/b", "--oidc-issuer",
        "https://sso/realms/x", "--oidc-client-id", "c", "--oidc-client-secret-file", empty.toString()).settings());
  }

  @Test
  void settingsStart_servesTheSocket_closeRemovesIt() throws Exception {
    try (FakeKeyService tpmkms = new FakeKeyService("a/b")) {
      Path socket = dir.resolve("run/kms.sock");
      KmsPlugin.Settings s = parse("--socket", socket.toString(), "--target", tpmkms.target(), "--key", "a/b",
          "--plaintext", "--status-timeout", "3s", "--aad", "cluster-a").settings();
      try (KmsPlugin.Running running = s.start()) {
        ManagedChannel ch = Grpc.newChannelBuilder("unix://" + socket, InsecureChannelCredentials.create()).build();
        try {
          var status = KeyManagementServiceGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
              .status(StatusRequest.getDefaultInstance());
          assertEquals("ok", status.getHealthz());
          assertEquals("tpmkms:a/b:v1", status.getKeyId());
        } finally {
          ch.shutdownNow();
        }
      }
      assertFalse(Files.exists(socket));
    }
  }
}

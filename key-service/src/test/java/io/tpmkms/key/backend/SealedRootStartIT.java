package io.tpmkms.key.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged key service with its root seed sealed to PCR 16 and an operator secret (issue 20,
 * ADR 0034): it starts and serves; after tpm2_pcrextend of PCR 16 it refuses to start, saying which
 * PCR changed, and changes nothing; after tpm2_pcrreset it starts with the same seed (a ciphertext
 * from before decrypts). An operator secret file inside the data dir is refused.
 */
class SealedRootStartIT {
  @TempDir Path dir;

  @Test
  void platformStateChanged_refusesToStart_nothingLost_startsAgainInTheSealedState() throws Exception {
    Path jar = Path.of("target", "quarkus-app", "quarkus-run.jar").toAbsolutePath();
    Path secret = Files.createDirectories(dir.resolve("secrets")).resolve("root.secret");
    Files.writeString(secret, "a long random operator secret from the vault\n");
    try (Swtpm swtpm = Swtpm.start()) {
      Swtpm.run(List.of("tpm2_pcrreset", "-T", swtpm.tcti(), "16"), 30);
      int[] ports = ServiceProcess.freePorts(2);
      Map<String, String> env = new LinkedHashMap<>();
      env.put("TPMKMS_DATA_DIR", dir.resolve("data").toString());
      env.put("TPMKMS_GRPC_PORT", Integer.toString(ports[0]));
      env.put("TPMKMS_HTTP_PORT", Integer.toString(ports[1]));
      env.put("TPMKMS_AUTH_MODE", "none");
      env.put("TPMKMS_BACKEND_TPM_TRANSPORT", "unix");
      env.put("TPMKMS_BACKEND_TPM_PATH", swtpm.socket().toString());
      env.put("TPMKMS_BACKEND_TPM_ROOT_SEAL_PCRS", "16");
      env.put("TPMKMS_BACKEND_TPM_ROOT_SECRET_FILE", secret.toString());
      ServiceProcess service = ServiceProcess.start(jar, env, dir.resolve("key.log"));
      ManagedChannel channel = Grpc.newChannelBuilder("127.0.0.1:" + ports[0], InsecureChannelCredentials.create())
          .build();
      try {
        var keys = KeyServiceGrpc.newBlockingStub(channel);
        keys.withDeadlineAfter(60, TimeUnit.SECONDS).createKey(CreateKeyRequest.newBuilder().setNamespace("seal")
            .setName("soft").setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setProtectionLevel(ProtectionLevel.SOFTWARE).build());
        ByteString ct = keys.withDeadlineAfter(60, TimeUnit.SECONDS).encrypt(EncryptRequest.newBuilder()
            .setKey("seal/soft").setPlaintext(ByteString.copyFromUtf8("under the sealed root")).build()).getCiphertext();
        Path sealed = dir.resolve("data/software-root.sealed");
        byte[] file = Files.readAllBytes(sealed);
        assertEquals("TKSR", new String(file, 0, 4, StandardCharsets.US_ASCII));
        assertEquals(1, file[5], "sealed with the operator secret");
        assertEquals(1, file[6]);
        assertEquals(16, file[7], "bound to PCR 16");

        service.kill9(); // swtpm serves one connection: the tools' turn
        Swtpm.run(List.of("tpm2_pcrextend", "-T", swtpm.tcti(), "16:sha256=" + "cd".repeat(32)), 30);
        IllegalStateException refused = assertThrows(IllegalStateException.class, service::restart);
        assertTrue(refused.getMessage().contains("platform state changed")
            && refused.getMessage().contains("PCR 16 is "), refused.getMessage());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (service.isAlive() && System.nanoTime() < deadline) Thread.sleep(100);
        assertTrue(!service.isAlive(), "it exited instead of serving");
        assertArrayEquals(file, Files.readAllBytes(sealed), "nothing changed or deleted");

        Swtpm.run(List.of("tpm2_pcrreset", "-T", swtpm.tcti(), "16"), 30);
        service.restart();
        assertEquals("under the sealed root", KeyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60,
            TimeUnit.SECONDS).withWaitForReady().decrypt(DecryptRequest.newBuilder().setKey("seal/soft")
            .setCiphertext(ct).build()).getPlaintext().toStringUtf8(), "the same root seed");
      } finally {
        channel.shutdownNow();
        service.close();
      }

      // an operator secret kept in the data dir protects nothing: refused before the TPM is asked
      Path inside = dir.resolve("data/root.secret");
      Files.writeString(inside, "secret in the wrong place");
      env.put("TPMKMS_BACKEND_TPM_ROOT_SECRET_FILE", inside.toString());
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> ServiceProcess.start(jar, env, dir.resolve("key-2.log")).close());
      assertTrue(e.getMessage().contains("inside the data dir"), e.getMessage());
    }
  }
}

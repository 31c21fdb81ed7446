package io.tpmkms.key.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.agroal.api.AgroalDataSource;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.key.v1.*;
import jakarta.inject.Inject;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The service's outputs checked by code that is not the service's: signatures
 * with openssl and with the JDK from the PEM it publishes; RSA-OAEP ciphertexts
 * made by openssl; AES-GCM ciphertexts opened with the JDK following only the
 * documented formats (docs/api.md, docs/tpm-adapter.md) and the root seed file.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class InteropTest extends GrpcTest {
  @Inject AgroalDataSource db;

  @ConfigProperty(name = "tpmkms.backend.software.seed-file") String seedFile;

  @TempDir Path tmp;

  @Test
  void signatures_verifyWithOpensslAndJdk_forEverySignAlgorithm() throws Exception {
    byte[] data = "the release artifact".getBytes(StandardCharsets.UTF_8);
    Files.write(tmp.resolve("data"), data);
    for (Algorithm alg : List.of(Algorithm.EC_SIGN_P256_SHA256, Algorithm.EC_SIGN_P384_SHA384,
        Algorithm.RSA_SIGN_PKCS1_2048_SHA256, Algorithm.RSA_SIGN_PKCS1_3072_SHA256,
        Algorithm.RSA_SIGN_PSS_2048_SHA256, Algorithm.RSA_SIGN_PSS_3072_SHA256)) {
      String key = create("interop", "sig-" + alg.name().toLowerCase().replace('_', '-'), KeyPurpose.ASYMMETRIC_SIGN,
          alg);
      byte[] sig = client.keys().sign(SignRequest.newBuilder().setKey(key).setData(ByteString.copyFrom(data)).build())
          .getSignature().toByteArray();
      String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem();

      // the JDK, from the PEM
      PublicKey pub = parsePem(pem, alg.name().startsWith("EC") ? "EC" : "RSA");
      Signature v = jdkVerifier(alg);
      v.initVerify(pub);
      v.update(data);
      assertTrue(v.verify(sig), "JDK verifies " + alg);

      // openssl, from the PEM
      Path pemFile = tmp.resolve(alg + ".pem");
      Path sigFile = tmp.resolve(alg + ".sig");
      Files.writeString(pemFile, pem);
      Files.write(sigFile, sig);
      String digest = alg == Algorithm.EC_SIGN_P384_SHA384 ? "-sha384" : "-sha256";
      List<String> cmd = new java.util.ArrayList<>(List.of("openssl", "dgst", digest, "-verify", pemFile.toString(),
          "-signature", sigFile.toString()));
      if (alg.name().contains("PSS")) {
        cmd.addAll(List.of("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"));
      }
      cmd.add(tmp.resolve("data").toString());
      assertEquals("Verified OK", run(cmd), "openssl verifies " + alg);

      // and a tampered signature fails with openssl too
      // the last byte lies inside the last INTEGER of an ECDSA DER signature (any other byte may be a tag or a
      // length, and openssl then reports a parse error instead of a verification failure): still well-formed
      sig[sig.length - 1] ^= 1;
      Files.write(sigFile, sig);
      assertTrue(run(cmd).contains("Verification failure"), "openssl rejects a tampered " + alg);
    }
  }

  @Test
  void asymmetricDecrypt_opensslOaepCiphertext_roundTrips() throws Exception {
    for (Algorithm alg : List.of(Algorithm.RSA_DECRYPT_OAEP_2048_SHA256, Algorithm.RSA_DECRYPT_OAEP_3072_SHA256)) {
      String key = create("interop", "oaep-" + alg.getNumber(), KeyPurpose.ASYMMETRIC_DECRYPT, alg);
      String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem();
      Path pemFile = tmp.resolve("oaep.pem");
      Files.writeString(pemFile, pem);
      Files.writeString(tmp.resolve("secret"), "wrapped secret " + alg);
      run(List.of("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pemFile.toString(),
          "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256",
          "-in", tmp.resolve("secret").toString(), "-out", tmp.resolve("secret.enc").toString()));
      byte[] pt = client.keys().asymmetricDecrypt(AsymmetricDecryptRequest.newBuilder().setKey(key).setVersion(1)
          .setCiphertext(ByteString.copyFrom(Files.readAllBytes(tmp.resolve("secret.enc")))).build())
          .getPlaintext().toByteArray();
      assertEquals("wrapped secret " + alg, new String(pt, StandardCharsets.UTF_8));

      // and the JDK's own OAEP
      Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
      c.init(Cipher.ENCRYPT_MODE, parsePem(pem, "RSA"), new OAEPParameterSpec("SHA-256", "MGF1",
          MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
      byte[] ct = c.doFinal("jdk".getBytes(StandardCharsets.UTF_8));
      assertEquals("jdk", client.keys().asymmetricDecrypt(AsymmetricDecryptRequest.newBuilder().setKey(key)
          .setVersion(1).setCiphertext(ByteString.copyFrom(ct)).build()).getPlaintext().toStringUtf8());
    }
  }

  @Test
  void ciphertext_decryptsWithIndependentAesGcm_followingTheDocumentedFormats() throws Exception {
    String key = create("interop", "aes", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
    byte[] aad = "tenant=7".getBytes(StandardCharsets.UTF_8);
    byte[] ct = client.keys().encrypt(EncryptRequest.newBuilder().setKey(key)
        .setPlaintext(ByteString.copyFromUtf8("independent check")).setAdditionalAuthenticatedData(ByteString.copyFrom(aad))
        .build()).getCiphertext().toByteArray();

    // ciphertext: 0x01 | uint32 BE version | nonce(12) | ciphertext | tag(16)
    assertEquals(1, ct[0]);
    int version = ByteBuffer.wrap(ct, 1, 4).getInt();
    assertEquals(2, version);

    // the version's key, unwrapped from its blob with the root seed (docs/tpm-adapter.md, blob format v1)
    byte[] seed = Files.readAllBytes(Path.of(seedFile));
    byte[] kek = hkdfSha256(seed, "tpmkms/software/kek/v1".getBytes(StandardCharsets.US_ASCII));
    byte[] blob = blob(key, version);
    assertArrayEquals("TKMS".getBytes(StandardCharsets.US_ASCII), Arrays.copyOfRange(blob, 0, 4));
    assertEquals(1, blob[4]);
    assertEquals(1, blob[5]);
    assertEquals(1, ((blob[6] & 0xff) << 8) | (blob[7] & 0xff), "algorithm code of AES_256_GCM");
    Cipher unwrap = Cipher.getInstance("AES/GCM/NoPadding");
    unwrap.init(Cipher.DECRYPT_MODE, new SecretKeySpec(kek, "AES"),
        new GCMParameterSpec(128, Arrays.copyOfRange(blob, 16, 28)));
    unwrap.updateAAD(blob, 0, 28);
    byte[] aesKey = unwrap.doFinal(blob, 28, blob.length - 28);
    assertEquals(32, aesKey.length);

    Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
    gcm.init(Cipher.DECRYPT_MODE, new SecretKeySpec(aesKey, "AES"), new GCMParameterSpec(128, ct, 5, 12));
    gcm.updateAAD(aad);
    byte[] pt = gcm.doFinal(ct, 17, ct.length - 17);
    assertEquals("independent check", new String(pt, StandardCharsets.UTF_8));

    // the blob does not hold the key in the clear
    assertTrue(indexOf(blob, aesKey) < 0);
  }

  // ---------------------------------------------------------------------------------------------

  private String create(String ns, String name, KeyPurpose purpose, Algorithm alg) {
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns).setName(name).setPurpose(purpose)
        .setAlgorithm(alg).build());
    return ns + "/" + name;
  }

  private static Signature jdkVerifier(Algorithm alg) throws Exception {
    return switch (alg) {
      case EC_SIGN_P256_SHA256 -> Signature.getInstance("SHA256withECDSA");
      case EC_SIGN_P384_SHA384 -> Signature.getInstance("SHA384withECDSA");
      case RSA_SIGN_PKCS1_2048_SHA256, RSA_SIGN_PKCS1_3072_SHA256 -> Signature.getInstance("SHA256withRSA");
      default -> {
        Signature s = Signature.getInstance("RSASSA-PSS");
        s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
        yield s;
      }
    };
  }

  private static PublicKey parsePem(String pem, String type) throws Exception {
    String b64 = pem.replace("-----BEGIN PUBLIC KEY-----", "").replace("-----END PUBLIC KEY-----", "")
        .replaceAll("\\s", "");
    return KeyFactory.getInstance(type).generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(b64)));
  }

  /** HKDF-SHA256 (RFC 5869) with an empty salt, 32 bytes of output, written out with the JDK's HMAC. */
  private static byte[] hkdfSha256(byte[] ikm, byte[] info) throws Exception {
    Mac mac = Mac.getInstance("HmacSHA256");
    mac.init(new SecretKeySpec(new byte[32], "HmacSHA256"));
    byte[] prk = mac.doFinal(ikm);
    mac.init(new SecretKeySpec(prk, "HmacSHA256"));
    mac.update(info);
    mac.update((byte) 1);
    return mac.doFinal();
  }

  private byte[] blob(String key, int version) throws Exception {
    String[] parts = key.split("/");
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("SELECT v.key_blob FROM kms_key_version v JOIN kms_key k"
            + " ON k.id = v.key_id WHERE k.namespace = ? AND k.name = ? AND v.number = ?")) {
      ps.setString(1, parts[0]);
      ps.setString(2, parts[1]);
      ps.setInt(3, version);
      try (ResultSet rs = ps.executeQuery()) {
        assertTrue(rs.next());
        return rs.getBytes(1);
      }
    }
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  private static String run(List<String> cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    return out;
  }
}

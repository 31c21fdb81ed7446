package io.tpmkms.key.imports;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.testing.GrpcTest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/**
 * The openssl-only interop of ImportKeyVersion, run against one protection level
 * ({@link ImportTest}: SOFTWARE, {@link TpmImportTest}: TPM on swtpm): openssl makes
 * the material and the wrapped blob, the service imports it through gRPC, and the
 * result is checked with openssl or plain JCA from the original material.
 */
abstract class ImportInteropCases extends GrpcTest {
  static final AtomicInteger SEQ = new AtomicInteger();
  final Openssl openssl;

  ImportInteropCases() {
    try {
      openssl = new Openssl();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  abstract ProtectionLevel level();

  /** The namespace this class's keys and jobs live in. */
  abstract String ns();

  ImportJob activeJob(String ns, ImportMethod method) {
    ImportJob j = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace(ns)
        .setJobId("job" + SEQ.incrementAndGet()).setImportMethod(method).setProtectionLevel(level())
        .setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    assertEquals(ImportJobState.ACTIVE, j.getState(), "the wrapping key was generated within the wait");
    assertTrue(j.getPublicKeyPem().startsWith("-----BEGIN PUBLIC KEY-----"));
    return j;
  }

  String key(KeyPurpose purpose, Algorithm alg, boolean importOnly) {
    String name = "k" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns()).setName(name).setPurpose(purpose)
        .setAlgorithm(alg).setProtectionLevel(level()).setImportOnly(importOnly).build());
    return ns() + "/" + name;
  }

  KeyVersion importInto(String key, ImportJob job, Algorithm alg, byte[] wrapped) {
    return client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(key)
        .setImportJob(job.getName()).setAlgorithm(alg).setWrappedKey(ByteString.copyFrom(wrapped)).build())
        .getVersion();
  }

  @Test
  void aes256_importedWithOpenssl_encryptsWithTheImportedKey() throws Exception {
    byte[] material = openssl.rand(32);
    ImportJob job = activeJob(ns(), ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String key = key(KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, true);
    KeyVersion v = importInto(key, job, Algorithm.AES_256_GCM, openssl.wrap(job.getPublicKeyPem(), material, false));
    assertEquals(1, v.getVersion());
    assertTrue(v.getImported() && v.getPrimary());
    assertEquals(job.getName(), v.getImportJob());
    assertEquals(KeyVersionState.ENABLED, v.getState());
    byte[] plaintext = "imported-aes".getBytes(StandardCharsets.US_ASCII);
    byte[] aad = "aad".getBytes(StandardCharsets.US_ASCII);
    EncryptResponse ct = client.keys().encrypt(EncryptRequest.newBuilder().setKey(key)
        .setPlaintext(ByteString.copyFrom(plaintext)).setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build());
    assertEquals(1, ct.getVersion());
    assertArrayEquals(plaintext, client.keys().decrypt(DecryptRequest.newBuilder().setKey(key)
        .setCiphertext(ct.getCiphertext()).setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build())
        .getPlaintext().toByteArray());
    checkCiphertextWithOriginalKey(material, ct.getCiphertext().toByteArray(), aad, plaintext);
  }

  /**
   * docs/api.md's format, decrypted with plain JCA: 0x01 | version (4) | nonce (12) | AES-256-GCM
   * ciphertext | tag (16), the caller's AAD as GCM AAD. The TPM's AEAD construction differs (ADR 0009);
   * TPM tests override this with nothing (the HMAC case proves the TPM holds the imported key).
   */
  void checkCiphertextWithOriginalKey(byte[] material, byte[] ct, byte[] aad, byte[] plaintext) throws Exception {
    assertEquals(1, ct[0]);
    assertEquals(1, java.nio.ByteBuffer.wrap(ct, 1, 4).getInt());
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(material, "AES"), new GCMParameterSpec(128, ct, 5, 12));
    c.updateAAD(aad);
    assertArrayEquals(plaintext, c.doFinal(ct, 17, ct.length - 17));
  }

  @Test
  void ecP256_importedWithOpenssl_signaturesVerifyWithOpenssl_publicKeyEqual() throws Exception {
    byte[] pkcs8 = openssl.ecP256();
    Path pub = openssl.publicKeyPem(pkcs8);
    ImportJob job = activeJob(ns(), ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String key = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, false); // has a generated v1
    KeyVersion v = importInto(key, job, Algorithm.EC_SIGN_P256_SHA256, openssl.wrap(job.getPublicKeyPem(), pkcs8, false));
    assertEquals(2, v.getVersion());
    assertTrue(v.getImported());
    assertTrue(!v.getPrimary(), "not made primary: the key has one");
    byte[] data = "signed by an imported key".getBytes(StandardCharsets.US_ASCII);
    SignResponse sig = client.keys().sign(SignRequest.newBuilder().setKey(key).setVersion(2)
        .setData(ByteString.copyFrom(data)).build());
    assertEquals(2, sig.getVersion());
    assertTrue(openssl.verifies(pub, data, sig.getSignature().toByteArray()), "openssl dgst -verify");
    String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).setVersion(2).build()).getPem();
    assertArrayEquals(Openssl.der(Files.readString(pub)), Openssl.der(pem), "GetPublicKey = openssl pkey -pubout");
    assertEquals(pem, v.getPublicKeyPem());
  }

  @Test
  void hmac_importedDirectlyWithOpenssl_tagEqualsOpensslMac() throws Exception {
    byte[] material = openssl.rand(32);
    ImportJob job = activeJob(ns(), ImportMethod.RSA_OAEP_3072_SHA256);
    String key = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, true);
    importInto(key, job, Algorithm.HMAC_SHA256, openssl.wrap(job.getPublicKeyPem(), material, true));
    byte[] data = "mac me".getBytes(StandardCharsets.US_ASCII);
    byte[] tag = client.keys().macSign(MacSignRequest.newBuilder().setKey(key).setData(ByteString.copyFrom(data))
        .build()).getMac().toByteArray();
    assertArrayEquals(openssl.hmacSha256(material, data), tag, "MacSign = openssl mac HMAC");
    Arrays.fill(material, (byte) 0);
  }
}

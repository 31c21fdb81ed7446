package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.ExportPolicy;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * What an observer of the TPM bus sees (ADR 0028): the backend talks to swtpm through a TCP relay of
 * this test that records every byte of every command and response. The secrets of a use — the data
 * and result of TPM2_HMAC (for AEAD keys: the data key), the plaintext of TPM2_RSA_Decrypt — cross
 * it only encrypted under the key's auth value, for keys in the HMAC session and for DUPLICABLE keys
 * in the policy session. The control: a Sign digest, which is not secret and not encrypted, is seen,
 * so the relay does record the parameters.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmBusObserverTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private Swtpm swtpm;
  private Relay relay;
  private TpmKeyProtectionBackend backend;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    relay = new Relay(swtpm.socket().toString());
    backend = TpmKeyProtectionBackend.open(TpmConfig.tcp("127.0.0.1", relay.port()),
        TpmKeyProtectionBackendTest.AUTH_SECRET);
  }

  @AfterAll
  void stop() throws Exception {
    if (backend != null) backend.close();
    if (relay != null) relay.close();
    if (swtpm != null) swtpm.close();
  }

  @BeforeEach
  void forgetTheBus() {
    relay.clear();
  }

  @Test
  void signDigest_crossesInClear_theRelaySeesParameters() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    byte[] digest = MessageDigest.getInstance("SHA-256").digest(random(64));
    relay.clear();
    backend.sign(k.handle(), digest);
    assertTrue(relay.saw(digest), "the relay records command parameters (a Sign digest is sent as is)");
  }

  @Test
  void hmac_dataAndResultCrossEncrypted_andTheResultIsStillRight() throws Exception {
    byte[] key = random(32);
    GeneratedKey k;
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.HMAC_SHA256, key)) {
      k = backend.importKey(new KeySpec(KeyAlgorithm.HMAC_SHA256), m);
    }
    byte[] data = random(48);
    relay.clear();
    byte[] tag = backend.mac(k.handle(), data);
    Mac jca = Mac.getInstance("HmacSHA256");
    jca.init(new SecretKeySpec(key, "HmacSHA256"));
    assertArrayEquals(jca.doFinal(data), tag, "the TPM computed the HMAC of the data as sent, decrypted");
    assertTrue(relay.bytes() > 0);
    assertFalse(relay.saw(data), "MAC input seen on the bus");
    assertFalse(relay.saw(tag), "MAC seen on the bus");
  }

  @Test
  void hmacSequence_longDataAndResultCrossEncrypted() throws Exception {
    byte[] key = random(32);
    GeneratedKey k;
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.HMAC_SHA256, key)) {
      k = backend.importKey(new KeySpec(KeyAlgorithm.HMAC_SHA256), m);
    }
    byte[] data = random(3000); // above 1024 bytes: HMAC_Start, SequenceUpdate, SequenceComplete
    relay.clear();
    byte[] tag = backend.mac(k.handle(), data);
    Mac jca = Mac.getInstance("HmacSHA256");
    jca.init(new SecretKeySpec(key, "HmacSHA256"));
    assertArrayEquals(jca.doFinal(data), tag);
    for (int off = 0; off + 16 <= data.length; off += 512) {
      assertFalse(relay.saw(Arrays.copyOfRange(data, off, off + 16)), "MAC input at " + off + " seen on the bus");
    }
    assertFalse(relay.saw(tag), "MAC seen on the bus");
  }

  @Test
  void aeadDataKey_neverCrossesInClear() throws Exception {
    byte[] key = random(32);
    GeneratedKey k;
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.AES_256_GCM, key)) {
      k = backend.importKey(new KeySpec(KeyAlgorithm.AES_256_GCM), m);
    }
    byte[] pt = "a plaintext under a TPM AES key".getBytes(StandardCharsets.US_ASCII);
    relay.clear();
    byte[] payload = backend.encrypt(k.handle(), pt, new byte[0]);
    assertArrayEquals(pt, backend.decrypt(k.handle(), payload, new byte[0]));
    Mac m = Mac.getInstance("HmacSHA256"); // ADR 0009: DEK = HMAC(key, label || salt)
    m.init(new SecretKeySpec(key, "HmacSHA256"));
    m.update("tpmkms/tpm/aead/v1".getBytes(StandardCharsets.US_ASCII));
    byte[] dek = m.doFinal(Arrays.copyOf(payload, 16));
    assertFalse(relay.saw(dek), "the data key seen on the bus");
    assertFalse(relay.saw(Arrays.copyOf(dek, 16)), "half of the data key seen on the bus");
  }

  @Test
  void rsaDecrypt_plaintextCrossesEncrypted_hmacSessionAndPolicySession() throws Exception {
    KeyPair pair = TpmImportTest.pair(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256);
    GeneratedKey imported;
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256, pair.getPrivate().getEncoded())) {
      imported = backend.importKey(new KeySpec(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256), m);
    }
    GeneratedKey duplicable = backend.generate(
        new KeySpec(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256, ExportPolicy.DUPLICABLE));
    for (GeneratedKey k : new GeneratedKey[] {imported, duplicable}) {
      PublicKey pub = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(k.publicKeyDer()));
      byte[] secret = random(32);
      Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
      c.init(Cipher.ENCRYPT_MODE, pub, new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256,
          PSource.PSpecified.DEFAULT));
      byte[] ciphertext = c.doFinal(secret);
      relay.clear();
      assertArrayEquals(secret, backend.asymmetricDecrypt(k.handle(), ciphertext));
      assertTrue(relay.saw(ciphertext), "the ciphertext (not secret) is sent as is");
      assertFalse(relay.saw(secret), "the plaintext seen on the bus");
    }
  }

  @Test
  void duplicableHmac_policySession_dataAndResultCrossEncrypted() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256, ExportPolicy.DUPLICABLE));
    byte[] data = random(40);
    relay.clear();
    byte[] tag = backend.mac(k.handle(), data);
    assertArrayEquals(tag, backend.mac(k.handle(), data), "deterministic");
    assertFalse(Arrays.equals(tag, backend.mac(k.handle(), random(40))), "other data, other tag");
    assertFalse(relay.saw(data), "MAC input seen on the bus");
    assertFalse(relay.saw(tag), "MAC seen on the bus");
  }

  @Test
  void duplicationRoundTrip_transferValueAndNewAuthValue_encryptedWhenThereIsATransferValue() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE));
    byte[] srk = backend.certifySrk(null).certifiedTpmPublic();
    for (byte[] transfer : new byte[][] {new byte[0], random(32)}) {
      for (int round = 0; round < 2; round++) { // twice: a failure must not leave the policy session spent
        relay.clear();
        Duplication blob = backend.duplicate(k.handle(), srk, transfer);
        GeneratedKey back = backend.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, blob, transfer);
        assertArrayEquals(k.publicKeyDer(), back.publicKeyDer());
        backend.sign(back.handle(), MessageDigest.getInstance("SHA-256").digest(random(8)));
        if (transfer.length > 0) assertFalse(relay.saw(transfer), "the transfer auth value seen on the bus");
      }
    }
  }

  // --- sessions salted to the SRK: what no auth value can protect -------------------------

  @Test
  void create_newKeysAuthValueCrossesEncrypted() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    byte[] objectId = TpmBlob.decode(k.handle().blob(), TpmBlob.BACKEND_TPM).objectId();
    Mac m = Mac.getInstance("HmacSHA256"); // docs/tpm-adapter.md: authValue = HMAC(authSecret, label || objectId)
    m.init(new SecretKeySpec(TpmKeyProtectionBackendTest.AUTH_SECRET, "HmacSHA256"));
    m.update("tpmkms/tpm/auth/v1".getBytes(StandardCharsets.US_ASCII));
    byte[] auth = m.doFinal(objectId);
    assertTrue(relay.bytes() > 0);
    assertFalse(relay.saw(auth), "the new key's auth value seen on the bus");
    // and the key works: its auth value reached the TPM intact
    backend.sign(k.handle(), MessageDigest.getInstance("SHA-256").digest(random(8)));
  }

  @Test
  void importSymmetric_materialCrossesEncrypted() throws Exception {
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.AES_256_GCM, KeyAlgorithm.HMAC_SHA256}) {
      byte[] key = random(32);
      relay.clear();
      GeneratedKey k;
      try (KeyMaterial m = KeyMaterial.parse(alg, key)) {
        k = backend.importKey(new KeySpec(alg), m);
      }
      assertTrue(relay.bytes() > 0);
      assertFalse(relay.saw(key), alg + ": imported key material seen on the bus");
      assertFalse(relay.saw(Arrays.copyOf(key, 16)), alg + ": half of the material seen on the bus");
      if (alg == KeyAlgorithm.HMAC_SHA256) {
        Mac jca = Mac.getInstance("HmacSHA256");
        jca.init(new SecretKeySpec(key, "HmacSHA256"));
        byte[] data = random(20);
        assertArrayEquals(jca.doFinal(data), backend.mac(k.handle(), data), "the TPM holds the material as sent");
      }
    }
  }

  @Test
  void sealedRootSeed_crossesEncrypted_whenSealedAndUnsealed(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
      throws Exception {
    java.nio.file.Path sealed = dir.resolve("root.sealed");
    relay.clear();
    byte[] seed = new TpmSealedRootKeySource(backend.connection(), sealed, null).rootSeed();
    assertTrue(relay.bytes() > 0);
    assertFalse(relay.saw(seed), "the root seed seen on the bus when sealed");
    relay.clear();
    byte[] again = new TpmSealedRootKeySource(backend.connection(), sealed, null).rootSeed();
    assertArrayEquals(seed, again, "unsealed what was sealed");
    assertTrue(relay.bytes() > 0);
    assertFalse(relay.saw(seed), "the root seed seen on the bus when unsealed");
  }

  @Test
  void importAsymmetric_privateKeyCrossesInAnInnerWrapper_andTheTpmUsesIt() throws Exception {
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.EC_SIGN_P256_SHA256,
        KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256}) {
      KeyPair pair = TpmImportTest.pair(alg);
      byte[] secret;
      if (pair.getPrivate() instanceof java.security.interfaces.ECPrivateKey ec) {
        secret = org.bouncycastle.util.BigIntegers.asUnsignedByteArray(32, ec.getS());
      } else {
        java.security.interfaces.RSAPrivateCrtKey rsa = (java.security.interfaces.RSAPrivateCrtKey) pair.getPrivate();
        secret = org.bouncycastle.util.BigIntegers.asUnsignedByteArray(rsa.getPrimeP());
      }
      relay.clear();
      GeneratedKey k;
      try (KeyMaterial m = KeyMaterial.parse(alg, pair.getPrivate().getEncoded())) {
        k = backend.importKey(new KeySpec(alg), m);
      }
      assertTrue(relay.bytes() > 0);
      assertFalse(relay.saw(Arrays.copyOf(secret, 16)), alg + ": the private key seen on the bus");
      assertArrayEquals(pair.getPublic().getEncoded(), k.publicKeyDer(), alg + ": the TPM holds the material");
    }
  }

  @Test
  void randomBytes_crossEncrypted_inOneSessionForEveryChunk() throws Exception {
    for (int n : new int[] {1, 32, 33, 100}) {
      relay.clear();
      byte[] r = backend.randomBytes(n);
      assertTrue(r.length == n, "length " + r.length);
      assertTrue(relay.bytes() > 0);
      for (int off = 0; off + 8 <= n; off += 8) {
        assertFalse(relay.saw(Arrays.copyOfRange(r, off, off + 8)), n + " random bytes: 8 of them seen on the bus");
      }
    }
    byte[] a = backend.randomBytes(32);
    assertFalse(Arrays.equals(a, backend.randomBytes(32)), "two calls, two values");
  }

  private static byte[] random(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  /** A TCP relay to swtpm's UNIX data socket that records both directions. */
  private static final class Relay implements AutoCloseable {
    private final ServerSocket server;
    private final ByteArrayOutputStream seen = new ByteArrayOutputStream();
    private final Thread acceptor;

    Relay(String unixSocket) throws Exception {
      server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
      acceptor = new Thread(() -> {
        while (!server.isClosed()) {
          try {
            Socket client = server.accept();
            SocketChannel tpm = SocketChannel.open(StandardProtocolFamily.UNIX);
            tpm.connect(UnixDomainSocketAddress.of(unixSocket));
            // the channel's own read and write (not Channels' streams, which share one lock and
            // would block a write behind a pending read)
            pump(client.getInputStream()::read, (b, n) -> tpm.write(ByteBuffer.wrap(b, 0, n)), client, tpm);
            pump(b -> tpm.read(ByteBuffer.wrap(b)), (b, n) -> {
              client.getOutputStream().write(b, 0, n);
              client.getOutputStream().flush();
            }, client, tpm);
          } catch (Exception e) {
            return;
          }
        }
      }, "bus-relay");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    private interface Source {
      int read(byte[] buf) throws java.io.IOException;
    }

    private interface Sink {
      void write(byte[] buf, int n) throws java.io.IOException;
    }

    private void pump(Source in, Sink out, Socket client, SocketChannel tpm) {
      Thread t = new Thread(() -> {
        byte[] buf = new byte[8192];
        try {
          for (int n; (n = in.read(buf)) > 0; ) {
            synchronized (seen) {
              seen.write(buf, 0, n);
            }
            out.write(buf, n);
          }
        } catch (Exception e) {
          // connection closed
        } finally {
          try {
            client.close();
            tpm.close();
          } catch (Exception ignored) {
            // closing
          }
        }
      }, "bus-relay-pump");
      t.setDaemon(true);
      t.start();
    }

    int port() {
      return ((InetSocketAddress) server.getLocalSocketAddress()).getPort();
    }

    void clear() {
      synchronized (seen) {
        seen.reset();
      }
    }

    int bytes() {
      synchronized (seen) {
        return seen.size();
      }
    }

    /** Whether {@code needle} appeared, in one piece, in what crossed the relay since the last clear. */
    boolean saw(byte[] needle) {
      byte[] hay;
      synchronized (seen) {
        hay = seen.toByteArray();
      }
      outer:
      for (int i = 0; i + needle.length <= hay.length; i++) {
        for (int j = 0; j < needle.length; j++) {
          if (hay[i + j] != needle[j]) continue outer;
        }
        return true;
      }
      return false;
    }

    @Override
    public void close() throws Exception {
      server.close();
    }
  }
}

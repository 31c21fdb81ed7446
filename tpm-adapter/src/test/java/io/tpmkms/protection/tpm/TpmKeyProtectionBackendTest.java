package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.Capability;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeyProtectionBackendContract;
import io.tpmkms.protection.ProtectionLevel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The backend contract on swtpm. {@code reopenBackend} alternates between a new
 * backend on the same running swtpm and one on a restarted swtpm (same state
 * dir: same owner seed, all transient objects gone).
 */
class TpmKeyProtectionBackendTest extends KeyProtectionBackendContract {
  private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(TpmKeyProtectionBackendTest.class);
  static final byte[] AUTH_SECRET = "0123456789abcdef0123456789abcdef".getBytes();

  private final Swtpm swtpm;
  private int reopens;

  TpmKeyProtectionBackendTest() throws Exception {
    swtpm = Swtpm.start();
  }

  @AfterAll
  void stopSwtpm() throws Exception { swtpm.close(); }

  @Override
  protected KeyProtectionBackend openBackend() {
    return TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET);
  }

  @Override
  protected KeyProtectionBackend reopenBackend() {
    // swtpm serves one connection at a time: the contract's backend lets go first and reconnects later
    ((TpmKeyProtectionBackend) backend()).releaseConnection();
    if (reopens++ % 2 == 1) {
      try {
        swtpm.restart();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
    return new ReleasingBackend(TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET));
  }

  @Test
  void describe_isTpmWithCertifyAndTheCoreAlgorithms() {
    var d = backend().describe();
    assertEquals("tpm", d.id());
    assertEquals(ProtectionLevel.TPM, d.level());
    assertTrue(d.supports(Capability.CERTIFY));
    for (KeyAlgorithm a : new KeyAlgorithm[] {KeyAlgorithm.EC_SIGN_P256_SHA256, KeyAlgorithm.HMAC_SHA256,
        KeyAlgorithm.AES_256_GCM, KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256}) {
      assertTrue(d.supports(a), "swtpm should support " + a);
    }
    LOG.info("swtpm algorithms: " + d.algorithms());
  }

  /** Closes the reopened backend's own connection, so the contract's backend can reconnect. */
  private record ReleasingBackend(TpmKeyProtectionBackend b) implements KeyProtectionBackend {
    @Override public io.tpmkms.protection.BackendDescription describe() { return b.describe(); }
    @Override public io.tpmkms.protection.GeneratedKey generate(io.tpmkms.protection.KeySpec s) { return b.generate(s); }
    @Override public io.tpmkms.protection.GeneratedKey importKey(io.tpmkms.protection.KeySpec s, io.tpmkms.protection.KeyMaterial m) { return b.importKey(s, m); }
    @Override public byte[] publicKey(io.tpmkms.protection.KeyHandle h) { return b.publicKey(h); }
    @Override public byte[] sign(io.tpmkms.protection.KeyHandle h, byte[] d) { return b.sign(h, d); }
    @Override public byte[] encrypt(io.tpmkms.protection.KeyHandle h, byte[] p, byte[] a) { return b.encrypt(h, p, a); }
    @Override public byte[] decrypt(io.tpmkms.protection.KeyHandle h, byte[] p, byte[] a) { return b.decrypt(h, p, a); }
    @Override public byte[] asymmetricDecrypt(io.tpmkms.protection.KeyHandle h, byte[] c) { return b.asymmetricDecrypt(h, c); }
    @Override public byte[] mac(io.tpmkms.protection.KeyHandle h, byte[] d) { return b.mac(h, d); }
    @Override public byte[] randomBytes(int n) { return b.randomBytes(n); }
    @Override public io.tpmkms.protection.KeyAttestation certify(io.tpmkms.protection.KeyHandle h, byte[] q) { return b.certify(h, q); }
    @Override public void destroy(io.tpmkms.protection.KeyHandle h) { b.destroy(h); }
    @Override public void close() { b.close(); }
  }
}

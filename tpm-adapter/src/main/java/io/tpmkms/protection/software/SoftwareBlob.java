package io.tpmkms.protection.software;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.KeyAlgorithm;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * Blob format v1 of the software backend (docs/tpm-adapter.md describes it byte by byte):
 *
 * <pre>
 * offset size
 *      0    4  magic "TKMS" (ASCII)
 *      4    1  format version 0x01
 *      5    1  backend 0x01 (software)
 *      6    2  algorithm code, uint16 big-endian ({@link KeyAlgorithm#code()})
 *      8    8  root id
 *     16   12  nonce
 *     28    n  AES-256-GCM(KEK, nonce, AAD = bytes 0..27) of the material, 16-byte tag last
 * </pre>
 *
 * Material: AES and HMAC keys are the 32 raw bytes; EC and RSA keys are
 * uint16 BE length of the SPKI DER | SPKI DER | PKCS#8 DER private key.
 *
 * <p>Stateless and thread-safe.
 */
final class SoftwareBlob {
  static final byte[] MAGIC = "TKMS".getBytes(StandardCharsets.US_ASCII);
  static final int FORMAT_V1 = 0x01;
  static final int BACKEND_SOFTWARE = 0x01;
  static final int ROOT_ID_LENGTH = 8;
  static final int NONCE_LENGTH = 12;
  static final int TAG_LENGTH = 16;
  static final int HEADER_LENGTH = 4 + 1 + 1 + 2 + ROOT_ID_LENGTH + NONCE_LENGTH; // 28

  /** What a blob holds once unwrapped; the caller zeroes {@code material} when done. */
  record Opened(KeyAlgorithm algorithm, byte[] material) {}

  private SoftwareBlob() {}

  static byte[] seal(KeyAlgorithm alg, byte[] rootId, SecretKey kek, byte[] material, SecureRandom random) {
    byte[] blob = new byte[HEADER_LENGTH + material.length + TAG_LENGTH];
    System.arraycopy(MAGIC, 0, blob, 0, 4);
    blob[4] = (byte) FORMAT_V1;
    blob[5] = (byte) BACKEND_SOFTWARE;
    blob[6] = (byte) (alg.code() >>> 8);
    blob[7] = (byte) alg.code();
    System.arraycopy(rootId, 0, blob, 8, ROOT_ID_LENGTH);
    byte[] nonce = new byte[NONCE_LENGTH];
    random.nextBytes(nonce);
    System.arraycopy(nonce, 0, blob, 16, NONCE_LENGTH);
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, kek, new GCMParameterSpec(TAG_LENGTH * 8, nonce));
      c.updateAAD(blob, 0, HEADER_LENGTH);
      int n = c.doFinal(material, 0, material.length, blob, HEADER_LENGTH);
      if (n != material.length + TAG_LENGTH) throw new IllegalStateException("unexpected GCM output length");
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot wrap key material", e);
    }
    return blob;
  }

  static Opened open(byte[] blob, byte[] rootId, SecretKey kek) {
    if (blob.length < 4 || !MessageDigest.isEqual(Arrays.copyOf(blob, 4), MAGIC)) {
      throw invalid("bad magic: not a tpmkms key blob");
    }
    if (blob.length < 6) throw invalid("key blob truncated (" + blob.length + " bytes)");
    int version = blob[4] & 0xff;
    if (version != FORMAT_V1) throw invalid("unknown key blob format version " + version);
    int backend = blob[5] & 0xff;
    if (backend != BACKEND_SOFTWARE) {
      throw invalid("not a software key blob (backend id " + backend + ")");
    }
    if (blob.length < HEADER_LENGTH + TAG_LENGTH + 1) {
      throw invalid("key blob truncated (" + blob.length + " bytes)");
    }
    KeyAlgorithm alg = KeyAlgorithm.fromCode(((blob[6] & 0xff) << 8) | (blob[7] & 0xff));
    if (!MessageDigest.isEqual(Arrays.copyOfRange(blob, 8, 16), rootId)) {
      throw invalid("key blob was wrapped under a different root key (root id mismatch)");
    }
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, kek, new GCMParameterSpec(TAG_LENGTH * 8, blob, 16, NONCE_LENGTH));
      c.updateAAD(blob, 0, HEADER_LENGTH);
      byte[] material = c.doFinal(blob, HEADER_LENGTH, blob.length - HEADER_LENGTH);
      return new Opened(alg, material);
    } catch (AEADBadTagException e) {
      throw new BackendException(BackendException.Kind.KEY_INVALID,
          "key blob integrity check failed (corrupt or tampered)", e);
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot unwrap key material", e);
    }
  }

  private static BackendException invalid(String message) {
    return new BackendException(BackendException.Kind.KEY_INVALID, message);
  }
}

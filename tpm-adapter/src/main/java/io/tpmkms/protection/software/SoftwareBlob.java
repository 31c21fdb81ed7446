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
 * Blob formats v1 and v2 of the software backend (docs/tpm-adapter.md describes them byte by byte).
 * v1, written for generated keys:
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
 * v2, written for imported and for DUPLICABLE keys: the same with one flags byte after the algorithm
 * code (bit 0 {@link #FLAG_IMPORTED}, bit 1 {@link #FLAG_EXPORTABLE}; other bits must be 0), so the
 * header is 29 bytes and all of it is AAD (the export policy cannot be changed without the KEK).
 * Generated keys keep v1, so a blob of a generated key stays readable by older versions.
 *
 * Material: AES and HMAC keys are the 32 raw bytes; EC and RSA keys are
 * uint16 BE length of the SPKI DER | SPKI DER | PKCS#8 DER private key.
 *
 * <p>Stateless and thread-safe.
 */
final class SoftwareBlob {
  static final byte[] MAGIC = "TKMS".getBytes(StandardCharsets.US_ASCII);
  static final int FORMAT_V1 = 0x01;
  static final int FORMAT_V2 = 0x02;
  /** v2 flags bit 0: the material came from outside (importKey), it was not generated here. */
  static final int FLAG_IMPORTED = 0x01;
  /** v2 flags bit 1: export policy DUPLICABLE (ADR 0025): the material may leave wrapped to a target key. */
  static final int FLAG_EXPORTABLE = 0x02;
  static final int BACKEND_SOFTWARE = 0x01;
  static final int ROOT_ID_LENGTH = 8;
  static final int NONCE_LENGTH = 12;
  static final int TAG_LENGTH = 16;
  static final int HEADER_LENGTH = 4 + 1 + 1 + 2 + ROOT_ID_LENGTH + NONCE_LENGTH; // 28 (v1)
  static final int HEADER_LENGTH_V2 = HEADER_LENGTH + 1; // 29

  /** What a blob holds once unwrapped; the caller zeroes {@code material} when done. */
  record Opened(KeyAlgorithm algorithm, byte[] material, boolean imported, boolean exportable) {}

  private SoftwareBlob() {}

  /** A v1 blob (generated key). */
  static byte[] seal(KeyAlgorithm alg, byte[] rootId, SecretKey kek, byte[] material, SecureRandom random) {
    return seal(alg, rootId, kek, material, random, false);
  }

  /** A v1 blob for a generated key, a v2 blob with {@link #FLAG_IMPORTED} for an imported one. */
  static byte[] seal(KeyAlgorithm alg, byte[] rootId, SecretKey kek, byte[] material, SecureRandom random,
      boolean imported) {
    return seal(alg, rootId, kek, material, random, imported, false);
  }

  /** v1 without flags; v2 with {@link #FLAG_IMPORTED} and/or {@link #FLAG_EXPORTABLE}. */
  static byte[] seal(KeyAlgorithm alg, byte[] rootId, SecretKey kek, byte[] material, SecureRandom random,
      boolean imported, boolean exportable) {
    int flags = (imported ? FLAG_IMPORTED : 0) | (exportable ? FLAG_EXPORTABLE : 0);
    boolean v2 = flags != 0;
    int header = v2 ? HEADER_LENGTH_V2 : HEADER_LENGTH;
    int at = v2 ? 9 : 8; // offset of the root id
    byte[] blob = new byte[header + material.length + TAG_LENGTH];
    System.arraycopy(MAGIC, 0, blob, 0, 4);
    blob[4] = (byte) (v2 ? FORMAT_V2 : FORMAT_V1);
    blob[5] = (byte) BACKEND_SOFTWARE;
    blob[6] = (byte) (alg.code() >>> 8);
    blob[7] = (byte) alg.code();
    if (v2) blob[8] = (byte) flags;
    System.arraycopy(rootId, 0, blob, at, ROOT_ID_LENGTH);
    byte[] nonce = new byte[NONCE_LENGTH];
    random.nextBytes(nonce);
    System.arraycopy(nonce, 0, blob, at + ROOT_ID_LENGTH, NONCE_LENGTH);
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, kek, new GCMParameterSpec(TAG_LENGTH * 8, nonce));
      c.updateAAD(blob, 0, header);
      int n = c.doFinal(material, 0, material.length, blob, header);
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
    if (version != FORMAT_V1 && version != FORMAT_V2) throw invalid("unknown key blob format version " + version);
    int backend = blob[5] & 0xff;
    if (backend != BACKEND_SOFTWARE) {
      throw invalid("not a software key blob (backend id " + backend + ")");
    }
    int header = version == FORMAT_V2 ? HEADER_LENGTH_V2 : HEADER_LENGTH;
    if (blob.length < header + TAG_LENGTH + 1) {
      throw invalid("key blob truncated (" + blob.length + " bytes)");
    }
    KeyAlgorithm alg = KeyAlgorithm.fromCode(((blob[6] & 0xff) << 8) | (blob[7] & 0xff));
    boolean imported = false;
    boolean exportable = false;
    int at = 8;
    if (version == FORMAT_V2) {
      int flags = blob[8] & 0xff;
      if (flags == 0 || (flags & ~(FLAG_IMPORTED | FLAG_EXPORTABLE)) != 0) {
        throw invalid("key blob has unknown flags 0x" + Integer.toHexString(flags));
      }
      imported = (flags & FLAG_IMPORTED) != 0;
      exportable = (flags & FLAG_EXPORTABLE) != 0;
      at = 9;
    }
    if (!MessageDigest.isEqual(Arrays.copyOfRange(blob, at, at + ROOT_ID_LENGTH), rootId)) {
      throw invalid("key blob was wrapped under a different root key (root id mismatch)");
    }
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, kek,
          new GCMParameterSpec(TAG_LENGTH * 8, blob, at + ROOT_ID_LENGTH, NONCE_LENGTH));
      c.updateAAD(blob, 0, header);
      byte[] material = c.doFinal(blob, header, blob.length - header);
      return new Opened(alg, material, imported, exportable);
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

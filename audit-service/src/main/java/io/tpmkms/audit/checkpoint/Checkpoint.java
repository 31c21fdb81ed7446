package io.tpmkms.audit.checkpoint;

import io.tpmkms.audit.chain.Canonical;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/**
 * A signed chain head: the record at {@code sequence} had hash {@code headHash}
 * at {@code time}. Signed (DER ECDSA P-256 over SHA-256 of
 * {@link Canonical#checkpoint}) by the audit key whose public key is
 * {@code signingKeyPem}; with anchor {@code tpm-nv}, {@code anchorValue} is the
 * TPM NV extend index's value after extending {@code headHash}.
 */
public record Checkpoint(
    long sequence, byte[] headHash, long seconds, int nanos, byte[] signature, String signingKeyPem,
    String anchor, byte[] anchorValue) {

  public static final String ANCHOR_TPM_NV = "tpm-nv";
  public static final String ANCHOR_SOFTWARE = "software";

  /** The bytes that are hashed and signed. */
  public byte[] canonical() {
    return Canonical.checkpoint(sequence, headHash, seconds, nanos, anchor);
  }

  /** Whether the signature is valid under the given key (not necessarily the one in the row). */
  public boolean signatureValid(PublicKey key) {
    try {
      Signature v = Signature.getInstance("SHA256withECDSA");
      v.initVerify(key);
      v.update(canonical());
      return v.verify(signature);
    } catch (GeneralSecurityException | RuntimeException e) {
      return false; // malformed DER is an invalid signature
    }
  }

  public static String pem(byte[] spki) {
    return "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(spki)
        + "\n-----END PUBLIC KEY-----\n";
  }

  public static PublicKey publicKey(String pem) throws GeneralSecurityException {
    String b64 = pem.replace("-----BEGIN PUBLIC KEY-----", "").replace("-----END PUBLIC KEY-----", "")
        .replaceAll("\\s", "");
    return KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(b64)));
  }
}

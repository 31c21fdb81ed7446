package io.tpmkms.system;

import com.google.protobuf.ByteString;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;

/**
 * Key material wrapped for an import job as docs/import-export.md says
 * (RSA_OAEP_*_SHA256_AES_256: RSA-OAEP SHA-256/MGF1-SHA-256 of a one-time AES-256 key,
 * then AES-KWP of the material), with plain JCA as an outside client would: the system
 * tests depend on the protocol, not on tpmkms' own code.
 */
final class ImportWrap {
  private ImportWrap() {}

  static PublicKey publicKey(String pem) throws GeneralSecurityException {
    return KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(
        Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""))));
  }

  static ByteString wrap(PublicKey jobKey, byte[] material) throws GeneralSecurityException {
    byte[] kek = new byte[32];
    new SecureRandom().nextBytes(kek);
    Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
    oaep.init(Cipher.ENCRYPT_MODE, jobKey, new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256,
        PSource.PSpecified.DEFAULT));
    Cipher kwp = Cipher.getInstance("AES/KWP/NoPadding");
    kwp.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(kek, "AES"));
    return ByteString.copyFrom(oaep.doFinal(kek)).concat(ByteString.copyFrom(kwp.doFinal(material)));
  }
}

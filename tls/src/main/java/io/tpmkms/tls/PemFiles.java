package io.tpmkms.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.openssl.PEMEncryptedKeyPair;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo;

/**
 * Certificates and private keys from PEM files, the form cert-manager and Kubernetes TLS Secrets
 * use ({@code tls.crt}, {@code tls.key}, {@code ca.crt}). Private keys: PKCS#8
 * ({@code BEGIN PRIVATE KEY}), PKCS#1 ({@code BEGIN RSA PRIVATE KEY}) and SEC1
 * ({@code BEGIN EC PRIVATE KEY}); encrypted keys are refused with a message saying so (the
 * file's protection is the file system's or the Secret's, as for every other TLS server).
 *
 * <p>Every failure is an {@link InvalidTlsFileException} naming the file and what is wrong with
 * it; the contents (a private key) are never in a message.
 */
public final class PemFiles {
  private PemFiles() {}

  /** The certificates of a PEM file, in file order (a chain: leaf first; a bundle: any order). */
  public static List<X509Certificate> certificates(Path file) {
    return certificates(file, read(file));
  }

  static List<X509Certificate> certificates(Path file, byte[] pem) {
    List<X509Certificate> out = new ArrayList<>();
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      for (var c : cf.generateCertificates(new ByteArrayInputStream(pem))) out.add((X509Certificate) c);
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new InvalidTlsFileException(file, "is not a PEM file of X.509 certificates (" + e.getMessage() + ")", e);
    }
    if (out.isEmpty()) throw new InvalidTlsFileException(file, "holds no certificate", null);
    return out;
  }

  /** The one private key of a PEM file. */
  public static PrivateKey privateKey(Path file) {
    return privateKey(file, read(file));
  }

  static PrivateKey privateKey(Path file, byte[] pem) {
    Object o;
    try (Reader r = new InputStreamReader(new ByteArrayInputStream(pem), StandardCharsets.US_ASCII);
         PEMParser parser = new PEMParser(r)) {
      o = parser.readObject();
    } catch (IOException | RuntimeException e) {
      throw new InvalidTlsFileException(file, "is not a PEM private key (" + e.getClass().getSimpleName() + ")", null);
    }
    PrivateKeyInfo info = o instanceof PrivateKeyInfo i ? i : o instanceof PEMKeyPair pair ? pair.getPrivateKeyInfo()
        : null;
    if (info != null) {
      // the JDK's own key factories (BouncyCastle's converter would ask for "ECDSA", which the JDK lacks)
      String oid = info.getPrivateKeyAlgorithm().getAlgorithm().getId();
      String alg = switch (oid) {
        case "1.2.840.113549.1.1.1" -> "RSA";
        case "1.2.840.10045.2.1" -> "EC";
        case "1.3.101.112" -> "Ed25519";
        default -> null;
      };
      if (alg == null) {
        throw new InvalidTlsFileException(file, "holds a private key of algorithm " + oid + "; RSA, EC and Ed25519 "
            + "keys are supported", null);
      }
      try {
        return java.security.KeyFactory.getInstance(alg)
            .generatePrivate(new java.security.spec.PKCS8EncodedKeySpec(info.getEncoded()));
      } catch (IOException | GeneralSecurityException | RuntimeException e) {
        throw new InvalidTlsFileException(file, "holds an " + alg + " private key this JVM cannot read", null);
      }
    }
    if (o instanceof PKCS8EncryptedPrivateKeyInfo || o instanceof PEMEncryptedKeyPair) {
      throw new InvalidTlsFileException(file, "holds an encrypted private key; give the key unencrypted "
          + "(PKCS#8 'BEGIN PRIVATE KEY'), protected by the file's permissions or the Secret", null);
    }
    throw new InvalidTlsFileException(file, o == null ? "holds no PEM private key"
        : "holds a PEM " + o.getClass().getSimpleName() + ", not a private key", null);
  }

  /** Whether {@code key} is the private half of {@code publicKey} (a signature made and checked). */
  public static boolean matches(PrivateKey key, PublicKey publicKey) {
    String alg = switch (key.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      case "Ed25519", "EdDSA" -> "Ed25519";
      default -> null;
    };
    if (alg == null || !key.getAlgorithm().equals(publicKey.getAlgorithm())) return false;
    try {
      byte[] probe = "tpmkms/tls/key-matches-certificate".getBytes(StandardCharsets.US_ASCII);
      Signature s = Signature.getInstance(alg);
      s.initSign(key);
      s.update(probe);
      byte[] sig = s.sign();
      Signature v = Signature.getInstance(alg);
      v.initVerify(publicKey);
      v.update(probe);
      return v.verify(sig);
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  static byte[] read(Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (java.nio.file.NoSuchFileException e) {
      throw new InvalidTlsFileException(file, "does not exist", null);
    } catch (java.nio.file.AccessDeniedException e) {
      throw new InvalidTlsFileException(file, "cannot be read (permission denied)", null);
    } catch (IOException e) {
      throw new InvalidTlsFileException(file, "cannot be read (" + e.getMessage() + ")", e);
    }
  }
}

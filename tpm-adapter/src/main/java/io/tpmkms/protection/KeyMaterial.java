package io.tpmkms.protection;

import java.io.IOException;
import java.math.BigInteger;
import java.security.MessageDigest;
import java.util.Arrays;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.pkcs.RSAPrivateKey;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.asn1.x9.ECNamedCurveTable;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;

/**
 * TEMP adapter stand-in (issue 12): a minimal KeyMaterial so key-service's import
 * path runs before the adapter branch is merged. Dropped at merge time.
 */
public final class KeyMaterial implements AutoCloseable {
  private final KeyAlgorithm algorithm;
  private final byte[] encoded;
  private final byte[] publicKeyDer;
  private final byte[] fingerprint;

  private KeyMaterial(KeyAlgorithm algorithm, byte[] encoded, byte[] publicKeyDer, byte[] fingerprint) {
    this.algorithm = algorithm;
    this.encoded = encoded;
    this.publicKeyDer = publicKeyDer;
    this.fingerprint = fingerprint;
  }

  public static KeyMaterial parse(KeyAlgorithm algorithm, byte[] encoded) {
    try {
      if (!algorithm.isAsymmetric()) {
        if (encoded.length != 32) throw invalid("must be 32 bytes");
        return new KeyMaterial(algorithm, encoded.clone(), null, sha256(encoded));
      }
      PrivateKeyInfo pki = PrivateKeyInfo.getInstance(ASN1Primitive.fromByteArray(encoded));
      ASN1ObjectIdentifier oid = pki.getPrivateKeyAlgorithm().getAlgorithm();
      if (algorithm.isEc()) {
        if (!X9ObjectIdentifiers.id_ecPublicKey.equals(oid)) throw invalid("not an EC key");
        ASN1ObjectIdentifier curve = ASN1ObjectIdentifier.getInstance(pki.getPrivateKeyAlgorithm().getParameters());
        ASN1ObjectIdentifier want = algorithm.keyBits() == 256 ? X9ObjectIdentifiers.prime256v1 : SECObjectIdentifiers.secp384r1;
        if (!want.equals(curve)) throw invalid("unsupported curve " + curve);
        BigInteger d = org.bouncycastle.asn1.sec.ECPrivateKey.getInstance(pki.parsePrivateKey()).getKey();
        X9ECParameters p = ECNamedCurveTable.getByOID(curve);
        if (d.signum() <= 0 || d.compareTo(p.getN()) >= 0) throw invalid("private scalar out of range");
        byte[] q = p.getG().multiply(d).normalize().getEncoded(false);
        byte[] spki = new SubjectPublicKeyInfo(pki.getPrivateKeyAlgorithm(), q).getEncoded();
        return new KeyMaterial(algorithm, encoded.clone(), spki, sha256(concat(curve.getEncoded(), d.toByteArray())));
      }
      if (!PKCSObjectIdentifiers.rsaEncryption.equals(oid)) throw invalid("not an RSA key");
      RSAPrivateKey rsa = RSAPrivateKey.getInstance(pki.parsePrivateKey());
      if (rsa.getModulus().bitLength() != algorithm.keyBits()) {
        throw invalid("RSA modulus is " + rsa.getModulus().bitLength() + " bits, not " + algorithm.keyBits());
      }
      byte[] spki = new SubjectPublicKeyInfo(new AlgorithmIdentifier(PKCSObjectIdentifiers.rsaEncryption, DERNull.INSTANCE),
          new org.bouncycastle.asn1.pkcs.RSAPublicKey(rsa.getModulus(), rsa.getPublicExponent())).getEncoded();
      return new KeyMaterial(algorithm, encoded.clone(), spki,
          sha256(concat(rsa.getModulus().toByteArray(), rsa.getPrivateExponent().toByteArray())));
    } catch (IOException | RuntimeException e) {
      if (e instanceof BackendException b) throw b;
      throw new BackendException(BackendException.Kind.INVALID_INPUT, "not a PKCS#8 " + algorithm + " key", e);
    }
  }

  public KeyAlgorithm algorithm() { return algorithm; }

  public byte[] fingerprint() { return fingerprint.clone(); }

  /** Stand-in accessor for backends: the encoded material (not a copy). */
  public byte[] encoded() { return encoded; }

  /** Stand-in accessor: DER SubjectPublicKeyInfo of asymmetric material, else null. */
  public byte[] publicKeyDer() { return publicKeyDer == null ? null : publicKeyDer.clone(); }

  @Override public void close() { Arrays.fill(encoded, (byte) 0); }

  @Override public String toString() { return "KeyMaterial[hidden]"; }

  private static BackendException invalid(String m) {
    return new BackendException(BackendException.Kind.INVALID_INPUT, m);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}

package io.tpmkms.protection.tpm.attest;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.PKIXCertPathChecker;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.List;
import java.util.Set;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.ASN1String;
import org.bouncycastle.asn1.x500.AttributeTypeAndValue;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;

/**
 * Decides whether an EK certificate was issued by a TPM manufacturer we trust and certifies the EK
 * the TPM has (TCG EK Credential Profile for TPM Family 2.0, §3.2 "EK Certificate", §3.2.9 subject
 * alternative name, §3.2.16 extended key usage). What it checks, in order:
 *
 * <ol>
 *   <li>the certificate and the extra (intermediate) certificates parse as X.509 (MALFORMED);
 *   <li>the EK certificate is valid at the clock (EXPIRED, NOT_YET_VALID);
 *   <li>a chain from it through the extra certificates to one of the trusted CA certificates
 *       verifies with PKIX (RFC 5280 §6: signatures, validity of every certificate, basic
 *       constraints and keyCertSign of the CAs; revocation is not checked — manufacturers rarely
 *       publish CRLs for EKs) (UNTRUSTED_ISSUER, EXPIRED, NOT_YET_VALID);
 *   <li>keyUsage, when present, has keyEncipherment for an RSA EK and keyAgreement for an ECC EK,
 *       and extendedKeyUsage, when present, has tcg-kp-EKCertificate 2.23.133.8.1
 *       (WRONG_KEY_USAGE);
 *   <li>the subject alternative name's directoryName, when present, parses, and its TPM manufacturer
 *       (2.23.133.2.1), model (2.23.133.2.2) and version (2.23.133.2.3) are returned (MALFORMED);
 *   <li>the certified public key is the key of the EK public area the TPM reports (KEY_MISMATCH):
 *       without this, a valid certificate of another TPM would vouch for this one's EK.
 * </ol>
 *
 * <p>A trusted certificate may be a root or an intermediate (it becomes a trust anchor as it is).
 * Stateless and thread-safe; the clock is fixed per instance ({@link #at}).
 */
public final class EkCertificateValidator {
  public static final String OID_EK_CERTIFICATE = "2.23.133.8.1";
  public static final String OID_TPM_MANUFACTURER = "2.23.133.2.1";
  public static final String OID_TPM_MODEL = "2.23.133.2.2";
  public static final String OID_TPM_VERSION = "2.23.133.2.3";
  private static final String OID_SUBJECT_ALT_NAME = "2.5.29.17";
  private static final String OID_SUBJECT_DIRECTORY_ATTRIBUTES = "2.5.29.9";
  private static final int KU_KEY_ENCIPHERMENT = 2;
  private static final int KU_KEY_AGREEMENT = 4;
  private static final int MAX_CHAIN = 8;

  private final List<X509Certificate> trusted;
  private final Instant clock;

  /** Why a certificate was refused; stable names for callers and audit. */
  public enum Reason { UNTRUSTED_ISSUER, EXPIRED, NOT_YET_VALID, WRONG_KEY_USAGE, KEY_MISMATCH, MALFORMED }

  /** The certificate was refused; {@link #reason} says why in a word, the message in a sentence. */
  public static final class EkCertificateException extends Exception {
    private final Reason reason;

    public EkCertificateException(Reason reason, String message) { this(reason, message, null); }

    public EkCertificateException(Reason reason, String message, Throwable cause) {
      super(reason + ": " + message, cause);
      this.reason = reason;
    }

    public Reason reason() { return reason; }
  }

  /**
   * A validated EK certificate.
   *
   * @param manufacturer the TPM manufacturer from the subject alternative name (e.g. "id:00001014"), or null
   * @param model the TPM model, or null
   * @param version the TPM firmware version, or null
   * @param chain the EK certificate, the intermediates used, and the trusted certificate last
   */
  public record Result(String manufacturer, String model, String version, X500Principal subject,
      X500Principal issuer, List<X509Certificate> chain) {
    public Result {
      chain = List.copyOf(chain);
    }
  }

  public EkCertificateValidator(Collection<X509Certificate> trustedCas) { this(List.copyOf(trustedCas), null); }

  private EkCertificateValidator(List<X509Certificate> trusted, Instant clock) {
    if (trusted.isEmpty()) throw new IllegalArgumentException("no trusted EK CA certificates");
    this.trusted = trusted;
    this.clock = clock;
  }

  /** A validator over the CA certificates of a PEM bundle (one or more CERTIFICATE blocks). */
  public static EkCertificateValidator fromPem(String pemBundle) {
    try {
      List<X509Certificate> certs = new ArrayList<>();
      for (var c : CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(pemBundle.getBytes(StandardCharsets.US_ASCII)))) {
        certs.add((X509Certificate) c);
      }
      return new EkCertificateValidator(certs);
    } catch (CertificateException e) {
      throw new IllegalArgumentException("the EK CA bundle does not parse: " + e.getMessage(), e);
    }
  }

  /** The same trust, validating at {@code instant} instead of now. */
  public EkCertificateValidator at(Instant instant) { return new EkCertificateValidator(trusted, instant); }

  /**
   * @param ekCertificate the EK certificate (DER), as read from the TPM's NV index 0x01c00002 (RSA) or 0x01c0000a (ECC)
   * @param extraCertificates intermediate certificates (DER), any order; may be empty
   * @param ekTpmtPublic the EK's public area (TPMT_PUBLIC) the TPM reports
   * @throws EkCertificateException with the reason the certificate is refused
   */
  public Result validate(byte[] ekCertificate, List<byte[]> extraCertificates, byte[] ekTpmtPublic)
      throws EkCertificateException {
    Date now = Date.from(clock != null ? clock : Instant.now());
    X509Certificate ek = parse(ekCertificate, "EK certificate");
    List<X509Certificate> extras = new ArrayList<>();
    for (byte[] der : extraCertificates) extras.add(parse(der, "intermediate certificate"));
    try {
      ek.checkValidity(now);
    } catch (CertificateExpiredException e) {
      throw new EkCertificateException(Reason.EXPIRED, "the EK certificate expired at " + ek.getNotAfter().toInstant());
    } catch (CertificateNotYetValidException e) {
      throw new EkCertificateException(Reason.NOT_YET_VALID,
          "the EK certificate is valid from " + ek.getNotBefore().toInstant());
    }
    List<X509Certificate> path = new ArrayList<>();
    path.add(ek);
    X509Certificate anchor = chain(ek, extras, path);
    verifyPath(path, anchor, now);
    PublicKey ekKey;
    try {
      ekKey = TpmtPublic.parse(ekTpmtPublic).publicKey();
    } catch (IllegalArgumentException e) {
      throw new EkCertificateException(Reason.MALFORMED, "the EK public area: " + e.getMessage(), e);
    }
    checkUsage(ek, ek.getPublicKey());
    String[] tpm = tpmIdentity(ek);
    if (!sameKey(ek.getPublicKey(), ekKey)) {
      throw new EkCertificateException(Reason.KEY_MISMATCH, "the certificate certifies another key than this TPM's EK");
    }
    List<X509Certificate> chain = new ArrayList<>(path);
    chain.add(anchor);
    return new Result(tpm[0], tpm[1], tpm[2], ek.getSubjectX500Principal(), ek.getIssuerX500Principal(), chain);
  }

  private static X509Certificate parse(byte[] der, String what) throws EkCertificateException {
    if (der == null || der.length == 0) throw new EkCertificateException(Reason.MALFORMED, "no " + what);
    try {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
    } catch (CertificateException | RuntimeException e) {
      throw new EkCertificateException(Reason.MALFORMED, "the " + what + " does not parse: " + e.getMessage(), e);
    }
  }

  /** Orders the intermediates from the EK upwards into {@code path}; returns the trusted certificate it ends at. */
  private X509Certificate chain(X509Certificate ek, List<X509Certificate> extras, List<X509Certificate> path)
      throws EkCertificateException {
    X509Certificate current = ek;
    for (int depth = 0; depth < MAX_CHAIN; depth++) {
      X509Certificate anchor = issuerAmong(current, trusted);
      if (anchor != null) return anchor;
      X509Certificate next = issuerAmong(current, extras);
      if (next == null || path.contains(next)) break;
      path.add(next);
      current = next;
    }
    throw new EkCertificateException(Reason.UNTRUSTED_ISSUER, "no chain from the EK certificate (issuer "
        + ek.getIssuerX500Principal().getName() + ") to a trusted EK CA certificate");
  }

  private static X509Certificate issuerAmong(X509Certificate cert, List<X509Certificate> candidates) {
    for (X509Certificate c : candidates) {
      if (!c.getSubjectX500Principal().equals(cert.getIssuerX500Principal())) continue;
      try {
        cert.verify(c.getPublicKey());
        return c;
      } catch (GeneralSecurityException | RuntimeException e) {
        // another certificate with the same name may have signed it
      }
    }
    return null;
  }

  private static void verifyPath(List<X509Certificate> path, X509Certificate anchor, Date now)
      throws EkCertificateException {
    try {
      CertPath certPath = CertificateFactory.getInstance("X.509").generateCertPath(path);
      PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(anchor, null)));
      params.setRevocationEnabled(false);
      params.setDate(now);
      params.addCertPathChecker(new TcgExtensions());
      CertPathValidator.getInstance("PKIX").validate(certPath, params);
    } catch (CertPathValidatorException e) {
      Reason r = e.getReason() == CertPathValidatorException.BasicReason.EXPIRED ? Reason.EXPIRED
          : e.getReason() == CertPathValidatorException.BasicReason.NOT_YET_VALID ? Reason.NOT_YET_VALID
          : Reason.UNTRUSTED_ISSUER;
      throw new EkCertificateException(r, "the chain does not validate: " + e.getMessage(), e);
    } catch (GeneralSecurityException e) {
      throw new EkCertificateException(Reason.MALFORMED, "the chain cannot be validated: " + e.getMessage(), e);
    }
  }

  /**
   * Marks the EK certificate's TCG extensions processed (we read them ourselves): a critical
   * subjectDirectoryAttributes (the TPM specification and security assertions) must not fail PKIX.
   */
  private static final class TcgExtensions extends PKIXCertPathChecker {
    @Override public void init(boolean forward) {}

    @Override public boolean isForwardCheckingSupported() { return true; }

    @Override public Set<String> getSupportedExtensions() { return Set.of(OID_SUBJECT_DIRECTORY_ATTRIBUTES); }

    @Override public void check(java.security.cert.Certificate cert, Collection<String> unresolved) {
      unresolved.remove(OID_SUBJECT_DIRECTORY_ATTRIBUTES);
    }
  }

  private static void checkUsage(X509Certificate ek, PublicKey key) throws EkCertificateException {
    boolean[] ku = ek.getKeyUsage();
    if (ku != null) {
      boolean rsa = key instanceof RSAPublicKey;
      int needed = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
      if (ku.length <= needed || !ku[needed]) {
        throw new EkCertificateException(Reason.WRONG_KEY_USAGE, "keyUsage lacks "
            + (rsa ? "keyEncipherment (RSA EK)" : "keyAgreement (ECC EK)"));
      }
    }
    List<String> eku;
    try {
      eku = ek.getExtendedKeyUsage();
    } catch (CertificateException e) {
      throw new EkCertificateException(Reason.MALFORMED, "extendedKeyUsage does not parse", e);
    }
    if (eku != null && !eku.contains(OID_EK_CERTIFICATE)) {
      throw new EkCertificateException(Reason.WRONG_KEY_USAGE,
          "extendedKeyUsage lacks tcg-kp-EKCertificate " + OID_EK_CERTIFICATE + ": " + eku);
    }
  }

  /** {manufacturer, model, version} from the subject alternative name's directoryName; nulls when absent. */
  static String[] tpmIdentity(X509Certificate ek) throws EkCertificateException {
    String[] out = new String[3];
    byte[] ext = ek.getExtensionValue(OID_SUBJECT_ALT_NAME);
    if (ext == null) return out;
    try {
      GeneralNames names = GeneralNames.getInstance(
          org.bouncycastle.asn1.ASN1OctetString.getInstance(ext).getOctets());
      for (GeneralName n : names.getNames()) {
        if (n.getTagNo() != GeneralName.directoryName) continue;
        for (RDN rdn : X500Name.getInstance(n.getName()).getRDNs()) {
          for (AttributeTypeAndValue atv : rdn.getTypesAndValues()) {
            String oid = atv.getType().getId();
            int i = oid.equals(OID_TPM_MANUFACTURER) ? 0 : oid.equals(OID_TPM_MODEL) ? 1
                : oid.equals(OID_TPM_VERSION) ? 2 : -1;
            if (i >= 0) out[i] = text(atv.getValue());
          }
        }
      }
      return out;
    } catch (RuntimeException e) {
      throw new EkCertificateException(Reason.MALFORMED, "the subject alternative name does not parse", e);
    }
  }

  private static String text(ASN1Encodable value) {
    ASN1Primitive p = value.toASN1Primitive();
    if (p instanceof ASN1String s) return s.getString();
    throw new IllegalArgumentException("a TPM attribute is not a string");
  }

  private static boolean sameKey(PublicKey certified, PublicKey ek) {
    if (certified instanceof RSAPublicKey a && ek instanceof RSAPublicKey b) {
      return a.getModulus().equals(b.getModulus()) && a.getPublicExponent().equals(b.getPublicExponent());
    }
    if (certified instanceof ECPublicKey a && ek instanceof ECPublicKey b) {
      return a.getW().equals(b.getW()) && a.getParams().getCurve().equals(b.getParams().getCurve());
    }
    return false;
  }
}

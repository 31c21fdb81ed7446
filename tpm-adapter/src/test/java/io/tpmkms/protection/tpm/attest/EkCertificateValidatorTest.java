package io.tpmkms.protection.tpm.attest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.EkCertificateValidator.EkCertificateException;
import io.tpmkms.protection.tpm.attest.EkCertificateValidator.Reason;
import java.io.ByteArrayInputStream;
import java.math.BigInteger;
import java.nio.file.Files;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * EK certificates on swtpm: the one swtpm_setup stored (issued by swtpm_localca) validates against
 * the local CA and names swtpm's manufacturer, model and version; unrelated CAs, a self-signed
 * look-alike, a forged issuer name, other dates, another key and wrong usages are refused with
 * their reason. Test certificates are made with Bouncy Castle around the TPM's real EK key.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EkCertificateValidatorTest {
  private Swtpm swtpm;
  private TpmConnection tpm;
  private TpmAttestation.EndorsementKey ek;
  private TpmAttestation.EndorsementKey eccEk;
  private X509Certificate ekCert;
  private X509Certificate localCa;
  private X509Certificate rootCa;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.startWithEkCertificate();
    tpm = TpmConnection.open(swtpm.config());
    TpmAttestation att = new TpmAttestation(tpm);
    ek = att.endorsementKey(TpmAttestation.EkType.RSA_2048);
    eccEk = att.endorsementKey(TpmAttestation.EkType.ECC_P256);
    assertNotNull(ek.certificate(), "swtpm_setup stored an EK certificate");
    ekCert = cert(ek.certificate());
    localCa = cert(Files.readAllBytes(swtpm.dir.resolve("ca/issuercert.pem")));
    rootCa = cert(Files.readAllBytes(swtpm.dir.resolve("ca/swtpm-localca-rootca-cert.pem")));
  }

  @AfterAll
  void stop() throws Exception {
    if (tpm != null) tpm.close();
    if (swtpm != null) swtpm.close();
  }

  @Test
  void swtpmEkCertificate_validatesAgainstTheLocalCa_andNamesTheTpm() throws Exception {
    var r = new EkCertificateValidator(List.of(localCa)).validate(ek.certificate(), List.of(), ek.tpmtPublic());
    assertEquals("id:00001014", r.manufacturer());
    assertEquals("swtpm", r.model());
    assertEquals("id:20191023", r.version());
    assertEquals(List.of(ekCert, localCa), r.chain());
    assertEquals(localCa.getSubjectX500Principal(), r.issuer());

    // the root as trust anchor, the local CA given as an intermediate
    var fromRoot = new EkCertificateValidator(List.of(rootCa))
        .validate(ek.certificate(), List.of(localCa.getEncoded()), ek.tpmtPublic());
    assertEquals(List.of(ekCert, localCa, rootCa), fromRoot.chain());
    // and from a PEM bundle
    String pem = Files.readString(swtpm.dir.resolve("ca/swtpm-localca-rootca-cert.pem"));
    assertEquals("swtpm", EkCertificateValidator.fromPem(pem)
        .validate(ek.certificate(), List.of(localCa.getEncoded()), ek.tpmtPublic()).model());
  }

  @Test
  void theRootAlone_withoutTheIntermediate_isRefused() {
    assertReason(Reason.UNTRUSTED_ISSUER, () -> new EkCertificateValidator(List.of(rootCa))
        .validate(ek.certificate(), List.of(), ek.tpmtPublic()));
  }

  @Test
  void anUnrelatedCa_isRefused() throws Exception {
    Ca other = new Ca("CN=Unrelated TPM Manufacturer CA");
    assertReason(Reason.UNTRUSTED_ISSUER, () -> new EkCertificateValidator(List.of(other.cert))
        .validate(ek.certificate(), List.of(), ek.tpmtPublic()));
  }

  @Test
  void aSelfSignedLookAlike_andAForgedIssuerName_areRefused() throws Exception {
    KeyPair kp = rsa();
    X509Certificate self = issue("CN=swtpm-localca", kp.getPrivate(), "CN=swtpm-localca", kp.getPublic(),
        KeyUsage.keyEncipherment | KeyUsage.keyCertSign, true, Instant.now());
    assertReason(Reason.UNTRUSTED_ISSUER, () -> new EkCertificateValidator(List.of(localCa))
        .validate(self.getEncoded(), List.of(), ek.tpmtPublic()));
    // the EK's real key and the local CA's name, signed by someone else
    Ca forger = new Ca("CN=swtpm-localca");
    X509Certificate forged = forger.issueEk(ekPublicKey(), KeyUsage.keyEncipherment, true);
    assertReason(Reason.UNTRUSTED_ISSUER, () -> new EkCertificateValidator(List.of(localCa))
        .validate(forged.getEncoded(), List.of(), ek.tpmtPublic()));
    // ...which the forger's own CA would accept: the refusal is the signature, not the shape
    assertEquals("swtpm", new EkCertificateValidator(List.of(forger.cert))
        .validate(forged.getEncoded(), List.of(), ek.tpmtPublic()).model());
  }

  @Test
  void outsideItsValidity_isRefused() {
    Instant after = ekCert.getNotAfter().toInstant().plus(Duration.ofDays(1));
    assertReason(Reason.EXPIRED, () -> new EkCertificateValidator(List.of(localCa)).at(after)
        .validate(ek.certificate(), List.of(), ek.tpmtPublic()));
    Instant before = ekCert.getNotBefore().toInstant().minus(Duration.ofDays(1));
    assertReason(Reason.NOT_YET_VALID, () -> new EkCertificateValidator(List.of(localCa)).at(before)
        .validate(ek.certificate(), List.of(), ek.tpmtPublic()));
  }

  @Test
  void anExpiredIntermediate_isRefusedAsExpired() throws Exception {
    Ca root = new Ca("CN=Test Root");
    Ca intermediate = new Ca("CN=Test Intermediate", root, Instant.now().minus(Duration.ofDays(360)));
    X509Certificate cert = intermediate.issueEk(ekPublicKey(), KeyUsage.keyEncipherment, true);
    var v = new EkCertificateValidator(List.of(root.cert));
    assertEquals("swtpm", v.validate(cert.getEncoded(), List.of(intermediate.cert.getEncoded()), ek.tpmtPublic())
        .model());
    assertReason(Reason.EXPIRED, () -> v.at(Instant.now().plus(Duration.ofDays(10)))
        .validate(cert.getEncoded(), List.of(intermediate.cert.getEncoded()), ek.tpmtPublic()));
  }

  @Test
  void aCertificateForAnotherKey_isRefused() {
    assertReason(Reason.KEY_MISMATCH, () -> new EkCertificateValidator(List.of(localCa))
        .validate(ek.certificate(), List.of(), eccEk.tpmtPublic()));
  }

  @Test
  void wrongKeyUsages_areRefused() throws Exception {
    Ca ca = new Ca("CN=Test TPM CA");
    var v = new EkCertificateValidator(List.of(ca.cert));
    X509Certificate signing = ca.issueEk(ekPublicKey(), KeyUsage.digitalSignature, true);
    assertReason(Reason.WRONG_KEY_USAGE, () -> v.validate(signing.getEncoded(), List.of(), ek.tpmtPublic()));
    X509Certificate noEkPurpose = ca.issueEk(ekPublicKey(), KeyUsage.keyEncipherment, false);
    assertReason(Reason.WRONG_KEY_USAGE, () -> v.validate(noEkPurpose.getEncoded(), List.of(), ek.tpmtPublic()));
  }

  @Test
  void anEccEkCertificate_needsKeyAgreement_andTheEccEksPoint() throws Exception {
    Ca ca = new Ca("CN=Test TPM CA");
    var v = new EkCertificateValidator(List.of(ca.cert));
    PublicKey eccKey = TpmtPublic.parse(eccEk.tpmtPublic()).publicKey();
    X509Certificate good = ca.issueEk(eccKey, KeyUsage.keyAgreement, true);
    assertEquals("id:00001014", v.validate(good.getEncoded(), List.of(), eccEk.tpmtPublic()).manufacturer());
    X509Certificate rsaUsage = ca.issueEk(eccKey, KeyUsage.keyEncipherment, true);
    assertReason(Reason.WRONG_KEY_USAGE, () -> v.validate(rsaUsage.getEncoded(), List.of(), eccEk.tpmtPublic()));
    assertReason(Reason.KEY_MISMATCH, () -> v.validate(good.getEncoded(), List.of(), ek.tpmtPublic()));
  }

  @Test
  void garbage_isMalformed() {
    var v = new EkCertificateValidator(List.of(localCa));
    assertReason(Reason.MALFORMED, () -> v.validate(new byte[] {0x30, 0x03, 1, 2, 3}, List.of(), ek.tpmtPublic()));
    assertReason(Reason.MALFORMED, () -> v.validate(ek.certificate(), List.of(), new byte[] {0, 1, 0, 11}));
  }

  // --- helpers ------------------------------------------------------------------------------

  private static void assertReason(Reason reason, org.junit.jupiter.api.function.Executable call) {
    EkCertificateException e = assertThrows(EkCertificateException.class, call);
    assertEquals(reason, e.reason(), e.getMessage());
  }

  private PublicKey ekPublicKey() { return TpmtPublic.parse(ek.tpmtPublic()).publicKey(); }

  private static X509Certificate cert(byte[] bytes) throws Exception {
    return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(bytes));
  }

  private static KeyPair rsa() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    return g.generateKeyPair();
  }

  private static long serial = System.currentTimeMillis();

  /** A test CA (self-signed, or issued by {@code parent}) valid for a year from {@code from}. */
  private static final class Ca {
    final KeyPair keys;
    final X509Certificate cert;

    Ca(String name) throws Exception { this(name, null, Instant.now().minus(Duration.ofDays(1))); }

    Ca(String name, Ca parent, Instant from) throws Exception {
      keys = rsa();
      cert = issue(parent == null ? name : parent.cert.getSubjectX500Principal().getName(),
          parent == null ? keys.getPrivate() : parent.keys.getPrivate(), name, keys.getPublic(),
          KeyUsage.keyCertSign | KeyUsage.cRLSign, true, from);
    }

    /** An EK certificate as the TCG profile describes it: empty-ish subject, TPM identity in the SAN. */
    X509Certificate issueEk(PublicKey key, int usage, boolean ekPurpose) throws Exception {
      X500Name issuer = X500Name.getInstance(cert.getSubjectX500Principal().getEncoded());
      Instant now = Instant.now();
      var b = new JcaX509v3CertificateBuilder(issuer, BigInteger.valueOf(++serial),
          Date.from(now.minus(Duration.ofDays(1))), Date.from(now.plus(Duration.ofDays(365))), new X500Name(""), key);
      X500Name tpm = new X500NameBuilder()
          .addRDN(new ASN1ObjectIdentifier(EkCertificateValidator.OID_TPM_MANUFACTURER), new DERUTF8String("id:00001014"))
          .addRDN(new ASN1ObjectIdentifier(EkCertificateValidator.OID_TPM_MODEL), new DERUTF8String("swtpm"))
          .addRDN(new ASN1ObjectIdentifier(EkCertificateValidator.OID_TPM_VERSION), new DERUTF8String("id:20191023"))
          .build();
      b.addExtension(Extension.subjectAlternativeName, true, new GeneralNames(new GeneralName(tpm)));
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(usage));
      b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(ekPurpose
          ? KeyPurposeId.getInstance(new ASN1ObjectIdentifier(EkCertificateValidator.OID_EK_CERTIFICATE))
          : KeyPurposeId.id_kp_clientAuth));
      return new JcaX509CertificateConverter().getCertificate(
          b.build(new JcaContentSignerBuilder("SHA256withRSA").build(keys.getPrivate())));
    }
  }

  private static X509Certificate issue(String issuer, PrivateKey signer, String subject, PublicKey key, int usage,
      boolean ca, Instant from) throws Exception {
    var b = new JcaX509v3CertificateBuilder(new X500Name(issuer), BigInteger.valueOf(++serial), Date.from(from),
        Date.from(from.plus(Duration.ofDays(365))), new X500Name(subject), key);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
    b.addExtension(Extension.keyUsage, true, new KeyUsage(usage));
    return new JcaX509CertificateConverter().getCertificate(
        b.build(new JcaContentSignerBuilder("SHA256withRSA").build(signer)));
  }
}

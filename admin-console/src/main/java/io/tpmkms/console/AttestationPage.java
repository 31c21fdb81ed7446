package io.tpmkms.console;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import io.quarkus.qute.TemplateData;
import io.tpmkms.proto.key.v1.GetKeyAttestationRequest;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.GetKeyVersionRequest;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.KeyAttestation;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.protection.tpm.AttestationVerification;
import io.tpmkms.protection.tpm.AttestationVerification.Check;
import io.tpmkms.protection.tpm.CertifiedObject;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * A key version's TPM attestation, fetched with a fresh nonce and checked here, in the console, with
 * the same verifier as {@code tpmkms attestation verify}: each check named, its result, and what it
 * proves in plain words. The console trusts nothing the key service says about the key beyond what
 * the TPM signed: the checks run on the statement's bytes.
 */
final class AttestationPage {
  private AttestationPage() {}

  private static final SecureRandom RANDOM = new SecureRandom();

  /** What each check proves, for a reader who does not know TPM 2.0. */
  static final Map<String, String> MEANING = Map.of(
      AttestationVerification.AK, "The attestation key (AK) is a restricted signing key that cannot leave its TPM "
          + "(fixedTPM). A restricted key signs only what the TPM itself produced, so software cannot make it sign a "
          + "forged statement.",
      AttestationVerification.SIGNATURE, "The statement's ECDSA signature verifies under the attestation key: these "
          + "exact bytes were signed by it.",
      AttestationVerification.STATEMENT, "The signed bytes start with TPM_GENERATED_VALUE (0xff544347) and are of type "
          + "TPM_ST_ATTEST_CERTIFY: the TPM wrote them itself in TPM2_Certify.",
      AttestationVerification.NONCE, "The statement carries the random nonce this page sent just now (extraData): it is "
          + "fresh, not a replay of an older one.",
      AttestationVerification.NAME, "The certified TPM name equals the hash of the key's public area below, so the "
          + "attributes read from that area are the TPM's word about this key.",
      AttestationVerification.ATTRIBUTES, "fixedTPM: the key can never be duplicated out of this TPM; fixedParent: nor "
          + "moved under another parent; sensitiveDataOrigin: the TPM generated the private material itself.",
      AttestationVerification.ATTRIBUTES_IMPORTED, "sensitiveDataOrigin is clear, as the service says the version was "
          + "imported: the material came from outside; the key's policy keeps it from being duplicated.",
      AttestationVerification.PUBLIC_KEY, "The certified public area holds the same public key the service hands out "
          + "(GetPublicKey): what clients verify or encrypt with is this TPM key.",
      AttestationVerification.EK, "The TPM's endorsement key certificate was issued by one of the manufacturer CAs "
          + "configured for the console: the service's TPM is a genuine one of that manufacturer. It does not yet tie "
          + "the attestation key to that TPM (see the note below).");

  @TemplateData
  record CheckRow(String name, String result, boolean ok, boolean failed, String detail, String meaning) {}

  @TemplateData
  record Field(String name, String value) {}

  /** The page's data: checks, facts and a verdict, or the service's refusal. */
  @TemplateData
  record Outcome(boolean passed, String verdict, List<CheckRow> checks, List<Field> fields, String note) {}

  static byte[] nonce() {
    byte[] n = new byte[32];
    RANDOM.nextBytes(n);
    return n;
  }

  /**
   * Fetches and checks the attestation of one version with the user's stub.
   *
   * @throws StatusRuntimeException the service's refusal (a software key has no TPM attestation)
   */
  static Outcome check(io.tpmkms.proto.key.v1.KeyServiceGrpc.KeyServiceBlockingStub keys, String key, int version,
      List<X509Certificate> ekCas) {
    byte[] nonce = nonce();
    GetKeyAttestationResponse r = keys.getKeyAttestation(GetKeyAttestationRequest.newBuilder().setKey(key)
        .setVersion(version).setNonce(ByteString.copyFrom(nonce)).build());
    KeyVersion kv = keys.getKeyVersion(GetKeyVersionRequest.newBuilder().setKey(key).setVersion(r.getVersion())
        .build()).getVersion();
    KeyPurpose purpose = keys.getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey().getPurpose();
    byte[] spki = null;
    if (purpose == KeyPurpose.ASYMMETRIC_SIGN || purpose == KeyPurpose.ASYMMETRIC_DECRYPT) {
      spki = pemToDer(keys.getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).setVersion(r.getVersion())
          .build()).getPem());
    }
    KeyAttestation a = r.getAttestation();
    io.tpmkms.protection.KeyAttestation statement = new io.tpmkms.protection.KeyAttestation(
        a.getAttest().toByteArray(), a.getSignature().toByteArray(), pemToDer(a.getAttestationKeyPem()),
        a.getAttestationKeyPublic().toByteArray(), a.getAttestationKeyName().toByteArray(),
        a.getEkCertificate().isEmpty() ? null : a.getEkCertificate().toByteArray(), a.getCertifiedName().toByteArray(),
        a.getCertifiedPublic().toByteArray());
    AttestationVerification v = AttestationVerification.run(statement, nonce, spki, ekCas.isEmpty() ? null : ekCas,
        kv.getImported() ? AttestationVerification.Claim.IMPORTED : AttestationVerification.Claim.GENERATED);

    List<CheckRow> checks = new ArrayList<>();
    for (Check c : v.checks) {
      checks.add(new CheckRow(c.name(), c.outcome().text, c.outcome() == AttestationVerification.Outcome.OK,
          c.outcome() == AttestationVerification.Outcome.FAILED, c.detail() == null ? "" : c.detail(),
          MEANING.getOrDefault(c.name(), "")));
    }
    HexFormat hex = HexFormat.of();
    List<Field> fields = new ArrayList<>();
    fields.add(new Field("Version", "v" + Integer.toUnsignedString(r.getVersion())));
    fields.add(new Field("Nonce sent", hex.formatHex(nonce)));
    fields.add(new Field("Certified TPM name", hex.formatHex(statement.certifiedName())));
    CertifiedObject certified = v.certified;
    if (certified != null) {
      fields.add(new Field("Object attributes", certified.attributeList()));
      fields.add(new Field("Origin (from the attributes)", certified.origin()));
      fields.add(new Field("Object policy (authPolicy)", certified.authPolicy().length == 0 ? "none"
          : hex.formatHex(certified.authPolicy())));
    }
    fields.add(new Field("What the service says", kv.getImported()
        ? "imported" + (kv.getImportJob().isEmpty() ? "" : " with import job " + kv.getImportJob())
        : "generated by the service"));
    fields.add(new Field("Attestation key name", hex.formatHex(statement.akName())));
    fields.add(new Field("EK certificate", ekDescription(statement.ekCertificateDer(), ekCas.isEmpty())));

    String verdict;
    if (!v.passed()) {
      Check first = v.failures().get(0);
      verdict = "NOT verified: " + first.name() + " failed (" + first.detail() + ").";
    } else if (certified == null || certified.generatedInTpm()) {
      verdict = "Verified: " + key + " v" + Integer.toUnsignedString(r.getVersion())
          + " was generated in a TPM and cannot leave it.";
    } else if (certified.has(CertifiedObject.FIXED_TPM) && certified.has(CertifiedObject.FIXED_PARENT)) {
      verdict = "Verified: " + key + " v" + Integer.toUnsignedString(r.getVersion())
          + " is an object in a TPM that cannot leave it; its material was imported.";
    } else {
      verdict = "Verified: " + key + " v" + Integer.toUnsignedString(r.getVersion()) + " is an object in a TPM; its "
          + "material was imported and only its policy keeps it from being duplicated.";
    }
    return new Outcome(v.passed(), verdict, checks, fields, AttestationVerification.TRUST_NOTE);
  }

  private static String ekDescription(byte[] der, boolean noCas) {
    if (der == null || der.length == 0) return "none (the TPM has no EK certificate in NV)";
    try {
      X509Certificate ek = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new ByteArrayInputStream(der));
      return "subject " + ek.getSubjectX500Principal().getName() + ", issuer " + ek.getIssuerX500Principal().getName()
          + ", valid until " + ek.getNotAfter().toInstant()
          + (noCas ? " (not checked: no manufacturer CA file is configured, tpmkms.console.ek-ca-file)" : "");
    } catch (CertificateException | RuntimeException e) {
      return "present but not a readable X.509 certificate";
    }
  }

  /** The manufacturer CAs from {@code tpmkms.console.ek-ca-file}; empty when unset. */
  static List<X509Certificate> readCas(java.util.Optional<String> file) {
    if (file.isEmpty()) return List.of();
    try {
      List<X509Certificate> out = new ArrayList<>();
      for (var c : CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(Files.readAllBytes(Path.of(file.get()))))) {
        out.add((X509Certificate) c);
      }
      return out;
    } catch (IOException | CertificateException e) {
      throw new IllegalStateException("tpmkms.console.ek-ca-file " + file.get() + ": " + e.getMessage(), e);
    }
  }

  /** DER of the first PEM block, or an empty array when there is none. */
  static byte[] pemToDer(String pem) {
    int begin = pem.indexOf("-----BEGIN ");
    if (begin < 0) return new byte[0];
    int bodyStart = pem.indexOf('\n', begin);
    int end = pem.indexOf("-----END ", bodyStart);
    if (bodyStart < 0 || end < 0) return new byte[0];
    return Base64.getMimeDecoder().decode(pem.substring(bodyStart + 1, end));
  }
}

package io.tpmkms.protection.tpm;

import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.tpm.KeyAttestationVerifier.VerificationException;
import java.io.ByteArrayInputStream;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

/**
 * Runs {@link KeyAttestationVerifier#verifyStatement} on an attestation and reports it as named
 * checks. The verifier stops at the first failure and says which in its message; the checks
 * before it passed, those after it were not reached. Two checks are added here (used by the CLI's {@code attestation verify} and the console's key page): that the AK's
 * PEM is the key of the AK public area the name is computed from, and (optionally) that the EK
 * certificate was issued by a given CA.
 */
public final class AttestationVerification {

    public enum Outcome {
        OK("ok"), FAILED("FAILED"), NOT_CHECKED("not checked");

        public final String text;

        Outcome(String text) {
            this.text = text;
        }
    }

    public record Check(String name, Outcome outcome, String detail) {
        public String line() {
            return name + ": " + outcome.text + (outcome == Outcome.FAILED && detail != null ? " (" + detail + ")" : "");
        }
    }

    public static final String AK = "attestation key is a restricted fixedTPM signing key, PEM = its public area";
    public static final String SIGNATURE = "signature by the attestation key";
    public static final String STATEMENT = "TPM-generated certify statement (magic 0xff544347, type 0x8017)";
    public static final String NONCE = "nonce";
    public static final String NAME = "certified name = hash of the public area";
    public static final String ATTRIBUTES = "attributes fixedTPM fixedParent sensitiveDataOrigin";
    public static final String ATTRIBUTES_IMPORTED = "attributes of an imported key (sensitiveDataOrigin clear)";
    public static final String PUBLIC_KEY = "public key matches";
    public static final String EK = "EK certificate issued by the given CA";
    public static final String VERIFIER = "statement";

    public static final String TRUST_NOTE = "the attestation key is not bound to the EK by credential activation: "
            + "this statement does not by itself prove that the attestation key is in a genuine TPM";

    /** What the service says about the key version's material: made in the TPM, or imported. */
    public enum Claim { GENERATED, IMPORTED }

    public final List<Check> checks = new ArrayList<>();
    /** The certified public area's attributes and policy; null when it cannot be parsed. */
    public CertifiedObject certified;
    public String ekSubject;
    public String ekIssuer;

    public boolean passed() {
        return checks.stream().allMatch(c -> c.outcome() == Outcome.OK);
    }

    public List<Check> failures() {
        return checks.stream().filter(c -> c.outcome() == Outcome.FAILED).toList();
    }

    /**
     * @param expectedSpki the key's public key (DER SubjectPublicKeyInfo), or null not to check it
     * @param ekCaCertificates the CA certificates to check the EK certificate against, or null not to
     */
    public static AttestationVerification run(KeyAttestation att, byte[] nonce, byte[] expectedSpki,
                                       Collection<X509Certificate> ekCaCertificates) {
        return run(att, nonce, expectedSpki, ekCaCertificates, Claim.GENERATED);
    }

    /**
     * @param claim what the service says about the version: {@link Claim#GENERATED} requires fixedTPM,
     *     fixedParent and sensitiveDataOrigin (as the verifier does); {@link Claim#IMPORTED} requires
     *     sensitiveDataOrigin clear (the TPM agrees the material came from outside) and reports
     *     fixedTPM/fixedParent as they are: TPM2_Import requires them clear for asymmetric keys
     */
    public static AttestationVerification run(KeyAttestation att, byte[] nonce, byte[] expectedSpki,
                                       Collection<X509Certificate> ekCaCertificates, Claim claim) {
        AttestationVerification v = new AttestationVerification();
        String attributesCheck = claim == Claim.IMPORTED ? ATTRIBUTES_IMPORTED : ATTRIBUTES;
        List<String> order = new ArrayList<>(List.of(AK, SIGNATURE, STATEMENT, NONCE, NAME, attributesCheck));
        if (expectedSpki != null) {
            order.add(PUBLIC_KEY);
        }
        try {
            v.certified = CertifiedObject.parse(att.certifiedTpmPublic());
        } catch (IllegalArgumentException e) {
            v.certified = null;
        }
        String failedCheck = null;
        String detail = null;
        String akMismatch = akPemMismatch(att);
        if (akMismatch != null) {
            failedCheck = AK;
            detail = akMismatch;
        } else {
            try {
                KeyAttestationVerifier.verifyStatement(att, nonce, expectedSpki);
            } catch (VerificationException e) {
                failedCheck = checkOf(e.getMessage());
                detail = e.getMessage();
            } catch (RuntimeException e) {
                failedCheck = VERIFIER;
                detail = "malformed attestation: " + e;
            }
        }
        if (claim == Claim.IMPORTED && (failedCheck == null || failedCheck.equals(ATTRIBUTES))) {
            // Everything up to the attributes verified; judge them against the claim, then the public key.
            failedCheck = null;
            detail = null;
            try {
                KeyAttestationVerifier.Result r = KeyAttestationVerifier.verifyStatementResult(att, nonce, expectedSpki);
                if (r.origin() == KeyAttestationVerifier.Origin.GENERATED) {
                    failedCheck = ATTRIBUTES_IMPORTED;
                    detail = "the service says the version was imported, but the TPM object says sensitiveDataOrigin "
                            + "(generated in a TPM)";
                } else if (r.duplicable()) {
                    failedCheck = ATTRIBUTES_IMPORTED;
                    detail = "the imported key can leave the TPM: fixedTPM is clear and its authPolicy is not "
                            + "tpmkms' no-duplication policy (" + r.summary() + ")";
                }
            } catch (VerificationException e) {
                failedCheck = checkOf(e.getMessage());
                detail = e.getMessage();
            } catch (RuntimeException e) {
                failedCheck = VERIFIER;
                detail = "malformed attestation: " + e;
            }
        }
        if (failedCheck != null && !order.contains(failedCheck)) {
            // A message the mapping does not know: nothing can be said about the single checks.
            for (String name : order) {
                v.checks.add(new Check(name, Outcome.NOT_CHECKED, null));
            }
            v.checks.add(new Check(failedCheck, Outcome.FAILED, detail));
        } else {
            boolean reached = true;
            for (String name : order) {
                if (name.equals(failedCheck)) {
                    v.checks.add(new Check(name, Outcome.FAILED, detail));
                    reached = false;
                } else {
                    v.checks.add(new Check(name, reached ? Outcome.OK : Outcome.NOT_CHECKED, null));
                }
            }
        }
        if (ekCaCertificates != null) {
            v.checks.add(v.checkEk(att.ekCertificateDer(), ekCaCertificates));
        }
        return v;
    }

    /** The check a verifier message belongs to (see KeyAttestationVerifier). */
    public static String checkOf(String message) {
        String m = message == null ? "" : message.toLowerCase(Locale.ROOT);
        if (m.startsWith("ak ")) {
            return AK;
        }
        if (m.contains("signature")) {
            return SIGNATURE;
        }
        if (m.contains("magic") || m.contains("certify statement") || m.contains("malformed tpms_attest")
                || m.contains("trailing bytes")) {
            return STATEMENT;
        }
        if (m.contains("extradata") || m.contains("qualifying data")) {
            return NONCE;
        }
        if (m.contains("certified name") || m.contains("certifiedname")) {
            return NAME;
        }
        if (m.contains("fixedtpm") || m.contains("sensitivedataorigin")) {
            return ATTRIBUTES;
        }
        if (m.contains("public key")) {
            return PUBLIC_KEY;
        }
        return VERIFIER;
    }

    /**
     * The verifier checks the AK's name and attributes on its TPMT_PUBLIC but the signature with
     * the PEM; this ties the two together.
     */
    private static String akPemMismatch(KeyAttestation att) {
        byte[] fromPublicArea;
        try {
            fromPublicArea = KeyAttestationVerifier.spkiOf(att.akTpmPublic());
        } catch (RuntimeException e) {
            return "the AK public area holds no ECC or RSA key";
        }
        if (!MessageDigest.isEqual(fromPublicArea, att.akPublicDer())) {
            return "the AK PEM is not the key of the AK public area";
        }
        return null;
    }

    private Check checkEk(byte[] ekDer, Collection<X509Certificate> cas) {
        if (ekDer == null || ekDer.length == 0) {
            return new Check(EK, Outcome.FAILED, "the attestation carries no EK certificate (the TPM has none in NV)");
        }
        X509Certificate ek;
        try {
            ek = (X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(new ByteArrayInputStream(ekDer));
        } catch (GeneralSecurityException | RuntimeException e) {
            return new Check(EK, Outcome.FAILED, "the EK certificate cannot be parsed: " + e.getMessage());
        }
        ekSubject = ek.getSubjectX500Principal().getName();
        ekIssuer = ek.getIssuerX500Principal().getName();
        boolean issuerNamed = false;
        for (X509Certificate ca : cas) {
            if (!ca.getSubjectX500Principal().equals(ek.getIssuerX500Principal())) {
                continue;
            }
            issuerNamed = true;
            try {
                ek.verify(ca.getPublicKey());
                return new Check(EK, Outcome.OK, null);
            } catch (GeneralSecurityException e) {
                // another certificate of the same name may have signed it
            }
        }
        return new Check(EK, Outcome.FAILED, issuerNamed
                ? "the EK certificate's signature does not verify under the CA certificate named " + ekIssuer
                : "the EK certificate's issuer " + ekIssuer + " is not in the CA file (add its intermediate certificates)");
    }

    public static String hex(byte[] b) {
        return java.util.HexFormat.of().formatHex(b);
    }
}

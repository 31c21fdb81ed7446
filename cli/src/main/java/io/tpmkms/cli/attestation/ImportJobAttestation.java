package io.tpmkms.cli.attestation;

import io.tpmkms.protection.tpm.AttestationVerification;
import io.tpmkms.protection.tpm.CertifiedObject;
import io.tpmkms.protection.tpm.AttestationVerification.Check;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * Offline check of a TPM import job's wrapping key, before any key material is wrapped for it:
 * the job's attestation (TPM2_Certify with qualifying data bound to the job's name,
 * {@code ImportWrapping.jobAttestationNonce}: the job carries no nonce of the caller's) verifies as
 * {@code attestation verify} checks a key's, the certified key is the job's {@code public_key_pem},
 * and its attributes say fixedTPM, fixedParent, sensitiveDataOrigin and decrypt — an RSA decrypt key
 * generated in the TPM that cannot leave it. For a TPM2_DUPLICATION job (its wrapping key is the
 * TPM's storage root key) the certified key must also be restricted (a storage key), and the job's
 * {@code wrapping_public}, which tpm2_duplicate and {@code keys export} wrap to, must be the TPM2B of
 * exactly the certified public area. Like every key attestation, this does not by itself
 * prove that the attestation key is in a genuine TPM (see {@link AttestationVerification#TRUST_NOTE}).
 * What the caller trusts can narrow it ({@link Trust}): the AK's name pinned to one recorded from a
 * setup the caller trusts, and the EK certificate required to chain to given CA certificates.
 */
public final class ImportJobAttestation {

    /**
     * @param verified every check passed
     * @param detail what was verified (the certified attributes), or which check failed and why
     * @param attestationKeyName hex TPM name of the attestation key, for pinning; null when absent
     */
    public record Result(boolean verified, String detail, String attestationKeyName) {
    }

    /**
     * What the caller trusts, beyond a statement that verifies.
     *
     * @param attestationKeyName the AK's TPM name (lowercase hex) the statement must carry, or null for any AK
     * @param ekCaCertificates CA certificates one of which must have issued the statement's EK certificate,
     *     or null not to check it
     */
    public record Trust(String attestationKeyName, List<X509Certificate> ekCaCertificates) {
        /** Any AK, no EK certificate check: the statement only has to verify. */
        public static final Trust ANY = new Trust(null, null);

        public Trust {
            attestationKeyName = attestationKeyName == null ? null : attestationKeyName.toLowerCase(Locale.ROOT);
            ekCaCertificates = ekCaCertificates == null ? null : List.copyOf(ekCaCertificates);
        }

        public boolean pinned() {
            return attestationKeyName != null;
        }

        public boolean any() {
            return attestationKeyName == null && ekCaCertificates == null;
        }
    }

    private ImportJobAttestation() {
    }

    /**
     * An AK name as the user typed it (hex, optionally 0x-prefixed, any case) in the form the CLI
     * prints, lowercase hex.
     *
     * @throws IllegalArgumentException if it is not hex of at least the 2-byte name algorithm and a digest
     */
    public static String parseAkName(String text) {
        String h = text.strip();
        if (h.startsWith("0x") || h.startsWith("0X")) {
            h = h.substring(2);
        }
        byte[] name;
        try {
            name = HexFormat.of().parseHex(h);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("not hex (an even number of 0-9a-f): " + text);
        }
        if (name.length < 3) {
            throw new IllegalArgumentException("too short for a TPM name (algorithm id and digest): " + text);
        }
        return HexFormat.of().formatHex(name);
    }

    /**
     * X.509 certificates (PEM, several allowed, or one DER), as {@code attestation verify --ek-ca} reads them.
     *
     * @throws IllegalArgumentException if there is none or they do not parse
     */
    public static List<X509Certificate> readCertificates(byte[] file) {
        try {
            List<X509Certificate> out = new ArrayList<>();
            for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(file))) {
                out.add((X509Certificate) c);
            }
            if (out.isEmpty()) {
                throw new IllegalArgumentException("no certificate in it");
            }
            return out;
        } catch (CertificateException e) {
            throw new IllegalArgumentException("not X.509 certificates (PEM or DER): " + e.getMessage(), e);
        }
    }

    /** The check of a TPM job as the service named it; {@code verified} is false for a job of another protection level. */
    public static Result verify(ImportJob job) {
        return verify(job, job.getName());
    }

    /**
     * The check of the TPM job the caller asked for: a job answered under another name (with
     * that job's key and statement) is refused.
     */
    public static Result verify(ImportJob job, String requestedName) {
        return verify(job, requestedName, Trust.ANY);
    }

    /**
     * The check of the TPM job the caller asked for, narrowed by what the caller trusts: with a pinned AK
     * name, a statement that verifies but carries another AK is refused; with EK CA certificates, the
     * statement's EK certificate must have been issued by one of them.
     */
    public static Result verify(ImportJob job, String requestedName, Trust trust) {
        if (!job.getName().equals(requestedName)) {
            return new Result(false, "the service answered with import job " + job.getName() + ", not "
                    + requestedName, null);
        }
        if (job.getProtectionLevel() != ProtectionLevel.TPM) {
            return new Result(false, "not a TPM job: its wrapping key has no attestation", null);
        }
        if (!job.hasAttestation() || job.getAttestation().getAttest().isEmpty()) {
            return new Result(false, "the job carries no attestation of its wrapping key", null);
        }
        io.tpmkms.protection.KeyAttestation statement;
        byte[] spki;
        try {
            statement = AttestationFile.toStatement(job.getAttestation());
            spki = AttestationFile.publicKeyDer(job.getPublicKeyPem().getBytes(StandardCharsets.US_ASCII));
        } catch (IllegalArgumentException e) {
            return new Result(false, "malformed job: " + e.getMessage(), null);
        }
        String akName = AttestationVerification.hex(statement.akName());
        AttestationVerification v = AttestationVerification.run(statement,
            io.tpmkms.protection.ImportWrapping.jobAttestationNonce(job.getName()), spki, trust.ekCaCertificates());
        if (!v.passed()) {
            Check failed = v.failures().get(0);
            return new Result(false, failed.name() + ": " + failed.detail(), akName);
        }
        if (v.certified == null || !v.certified.has(CertifiedObject.DECRYPT)) {
            return new Result(false, "the certified key is not a decrypt key", akName);
        }
        boolean duplication = job.getImportMethod() == ImportMethod.TPM2_DUPLICATION;
        if (duplication) {
            // tpm2_duplicate -U / keys export use wrapping_public: it must be the storage key the TPM certified.
            if (!v.certified.has(CertifiedObject.RESTRICTED)) {
                return new Result(false, "the certified key is not a storage key (restricted decrypt)", akName);
            }
            byte[] certified = job.getAttestation().getCertifiedPublic().toByteArray();
            byte[] wrapping = job.getWrappingPublic().toByteArray();
            if (wrapping.length == 0) {
                return new Result(false, "the job carries no wrapping_public (its storage key's public area)", akName);
            }
            if (wrapping.length != certified.length + 2 || ((wrapping[0] & 0xff) << 8 | wrapping[1] & 0xff) != certified.length
                    || !Arrays.equals(wrapping, 2, wrapping.length, certified, 0, certified.length)) {
                return new Result(false, "wrapping_public is not the certified public area", akName);
            }
        }
        if (trust.pinned() && !trust.attestationKeyName().equals(akName)) {
            // The verifier checked akName against the AK public area that verified the signature.
            return new Result(false, "attestation key name " + akName + " is not the pinned "
                    + "--attestation-key-name " + trust.attestationKeyName(), akName);
        }
        return new Result(true, "TPM2_Certify of the wrapping key: " + v.certified.attributeList()
                + "; public key = the job's"
                + (duplication ? "; wrapping_public = the certified storage key" : "")
                + (trust.pinned() ? "; attestation key = the pinned one" : "")
                + (trust.ekCaCertificates() != null ? "; EK certificate issued by the given CA" : ""), akName);
    }
}

package io.tpmkms.cli.attestation;

import io.tpmkms.cli.attestation.AttestationVerification.Check;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.charset.StandardCharsets;

/**
 * Offline check of a TPM import job's wrapping key, before any key material is wrapped for it:
 * the job's attestation (TPM2_Certify with qualifying data bound to the job's name,
 * {@code ImportWrapping.jobAttestationNonce}: the job carries no nonce of the caller's) verifies as
 * {@code attestation verify} checks a key's, the certified key is the job's {@code public_key_pem},
 * and its attributes say fixedTPM, fixedParent, sensitiveDataOrigin and decrypt — an RSA decrypt key
 * generated in the TPM that cannot leave it. Like every key attestation, this does not by itself
 * prove that the attestation key is in a genuine TPM (see {@link AttestationVerification#TRUST_NOTE}).
 */
public final class ImportJobAttestation {

    /**
     * @param verified every check passed
     * @param detail what was verified (the certified attributes), or which check failed and why
     * @param attestationKeyName hex TPM name of the attestation key, for pinning; null when absent
     */
    public record Result(boolean verified, String detail, String attestationKeyName) {
    }

    private ImportJobAttestation() {
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
            io.tpmkms.protection.ImportWrapping.jobAttestationNonce(job.getName()), spki, null);
        if (!v.passed()) {
            Check failed = v.failures().get(0);
            return new Result(false, failed.name() + ": " + failed.detail(), akName);
        }
        if (v.certified == null || !v.certified.has(CertifiedObject.DECRYPT)) {
            return new Result(false, "the certified key is not a decrypt key", akName);
        }
        return new Result(true, "TPM2_Certify of the wrapping key: " + v.certified.attributeList()
                + "; public key = the job's", akName);
    }
}

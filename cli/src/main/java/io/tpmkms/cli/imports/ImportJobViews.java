package io.tpmkms.cli.imports;

import io.tpmkms.cli.attestation.AttestationFile;
import io.tpmkms.cli.attestation.ImportJobAttestation;
import io.tpmkms.cli.format.Table;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.cli.format.Vocabulary;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.io.PrintStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The human-readable views of import jobs: a table for lists, aligned fields for one. */
final class ImportJobViews {

    private ImportJobViews() {
    }

    static void job(ImportJob j, PrintStream out) {
        job(j, ImportJobAttestation.Trust.ANY, out);
    }

    /** One job, its attestation line judged against what the user trusts (e.g. a pinned AK name). */
    static void job(ImportJob j, ImportJobAttestation.Trust trust, PrintStream out) {
        Table t = new Table("name:", j.getName())
                .row("state:", Vocabulary.state(j.getState()))
                .row("method:", Vocabulary.IMPORT_METHOD.show(j.getImportMethod()))
                .row("protection:", Vocabulary.PROTECTION.show(j.getProtectionLevel()))
                .row("created:", TimeText.show(j.getCreateTime()))
                .row("generated:", TimeText.show(j.getGenerateTime()))
                .row("expires:", TimeText.show(j.getExpireTime()))
                .row("expired:", TimeText.show(j.getExpireEventTime()))
                .row("public key:", fingerprint(j));
        if (j.getImportMethod() == ImportMethod.TPM2_DUPLICATION) {
            t.row("storage key:", storageKey(j));
        }
        t.row("attestation:", attestation(j, trust)).print(out);
    }

    /**
     * A TPM2_DUPLICATION job's storage key (the target of tpm2_duplicate / keys export): its TPM name,
     * 000b || SHA-256(TPMT_PUBLIC), as {@code tpm2_loadexternal -n} prints it; {@code -} before it exists.
     */
    static String storageKey(ImportJob j) {
        byte[] sized = j.getWrappingPublic().toByteArray();
        if (sized.length < 2) {
            return "-";
        }
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(java.util.Arrays.copyOfRange(sized, 2, sized.length));
            return "TPM name 000b" + HexFormat.of().formatHex(h) + " (--wrapping-public-out writes its TPM2B_PUBLIC)";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static void table(Iterable<ImportJob> jobs, PrintStream out) {
        Table table = new Table("NAME", "STATE", "METHOD", "PROTECTION", "CREATED", "EXPIRES", "PUBLIC KEY", "ATTESTATION");
        for (ImportJob j : jobs) {
            String fp = fingerprint(j);
            table.row(j.getName(), Vocabulary.state(j.getState()), Vocabulary.IMPORT_METHOD.show(j.getImportMethod()),
                    Vocabulary.PROTECTION.show(j.getProtectionLevel()), TimeText.show(j.getCreateTime()),
                    TimeText.show(j.getExpireTime()), fp.length() > 23 ? fp.substring(0, 23) + "..." : fp,
                    attestationWord(j));
        }
        table.print(out);
    }

    /**
     * {@code sha256:HEX} of the wrapping key's DER SubjectPublicKeyInfo, what
     * {@code openssl pkey -pubin -in wrap.pem -outform DER | sha256sum} prints; {@code -} before the key exists.
     */
    static String fingerprint(ImportJob j) {
        if (j.getPublicKeyPem().isEmpty()) {
            return "-";
        }
        try {
            byte[] der = AttestationFile.pemToDer(j.getPublicKeyPem());
            if (der.length == 0) {
                return "(not PEM)";
            }
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(der));
        } catch (IllegalArgumentException e) {
            return "(malformed PEM)";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The offline verification of a TPM job's attestation, in one line. */
    static String attestation(ImportJob j, ImportJobAttestation.Trust trust) {
        if (j.getProtectionLevel() != ProtectionLevel.TPM) {
            return "none: " + Vocabulary.PROTECTION.show(j.getProtectionLevel()) + " job, the wrapping key is not attested";
        }
        if (j.getState() == ImportJobState.EXPIRED) {
            return "- (expired: the wrapping key is destroyed)";
        }
        if (j.getPublicKeyPem().isEmpty() && !j.hasAttestation()) {
            return "- (no wrapping key yet)";
        }
        ImportJobAttestation.Result r = ImportJobAttestation.verify(j, j.getName(), trust);
        return r.verified()
                ? "verified offline: " + r.detail() + "; attestation key name " + r.attestationKeyName()
                        + (trust.pinned() ? " (pinned)" : "")
                : "NOT VERIFIED: " + r.detail();
    }

    private static String attestationWord(ImportJob j) {
        if (j.getProtectionLevel() != ProtectionLevel.TPM || j.getState() == ImportJobState.EXPIRED
                || (j.getPublicKeyPem().isEmpty() && !j.hasAttestation())) {
            return "-";
        }
        return ImportJobAttestation.verify(j).verified() ? "verified" : "FAILED";
    }
}

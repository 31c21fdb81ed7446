package io.tpmkms.cli.attestation;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.tpm.KeyAttestationVerifier;
import java.security.KeyPairGenerator;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.util.HexFormat;

/**
 * A TPM2_DUPLICATION import job as the key service returns one, made in software: an ECC P-256
 * storage key (the "SRK"), its TPM2B_PUBLIC as {@code wrapping_public}, and a TPM2_Certify of it with
 * the job's qualifying data by a synthetic attestation key ({@link SyntheticAttestation}): it verifies
 * offline exactly as a real job's does.
 */
public final class SyntheticDuplicationJob {

    public final ImportJob job;
    /** The storage key's TPMT_PUBLIC. */
    public final byte[] storagePublic;
    /** The attestation key's TPM name, hex, as the service's trusted AK list names it. */
    public final String akName;

    public SyntheticDuplicationJob(String name) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        storagePublic = SyntheticAttestation.eccStoragePublic((ECPublicKey) g.generateKeyPair().getPublic());
        SyntheticAttestation ak = new SyntheticAttestation();
        var attestation = ak.certify(storagePublic, ImportWrapping.jobAttestationNonce(name), 0).getAttestation();
        akName = HexFormat.of().formatHex(attestation.getAttestationKeyName().toByteArray());
        byte[] sized = new byte[storagePublic.length + 2];
        sized[0] = (byte) (storagePublic.length >>> 8);
        sized[1] = (byte) storagePublic.length;
        System.arraycopy(storagePublic, 0, sized, 2, storagePublic.length);
        job = ImportJob.newBuilder()
                .setName(name)
                .setNamespace(name.substring(0, name.indexOf('/')))
                .setJobId(name.substring(name.indexOf('/') + 1))
                .setImportMethod(ImportMethod.TPM2_DUPLICATION)
                .setProtectionLevel(ProtectionLevel.TPM)
                .setState(ImportJobState.ACTIVE)
                .setCreateTime(Timestamp.newBuilder().setSeconds(1_900_000_000L))
                .setGenerateTime(Timestamp.newBuilder().setSeconds(1_900_000_001L))
                .setExpireTime(Timestamp.newBuilder().setSeconds(1_900_259_200L))
                .setPublicKeyPem(SyntheticAttestation.pem(KeyAttestationVerifier.spkiOf(storagePublic)))
                .setAttestation(attestation)
                .setWrappingPublic(ByteString.copyFrom(sized))
                .build();
    }
}

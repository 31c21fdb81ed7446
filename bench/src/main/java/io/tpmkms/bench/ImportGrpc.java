package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.tpmkms.bench.ImportBaselines.Material;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateImportJobRequest;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportKeyVersionResponse;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.interfaces.ECPrivateKey;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * ImportKeyVersion through gRPC against a running key service: per protection level one import job
 * (RSA_OAEP_3072_SHA256_AES_256, created with {@code wait}) and two import-only keys, AES_256_GCM
 * and EC_SIGN_P256_SHA256. Every material is fresh and wrapped client-side with
 * {@link ImportWrapping} before the timing starts; each timed call is one blocking ImportKeyVersion
 * making the next version. After the timed calls the suite checks that the service really holds
 * the imported material: the EC key's last version has the public key of the last material, and a
 * ciphertext of the AES key's version 1 (its primary) decrypts locally with the first material
 * (docs/api.md: plain AES-GCM for SOFTWARE, the ADR 0009 construction for TPM).
 *
 * <p>A service without the import RPCs answers UNIMPLEMENTED: {@link #probe} reports that, and
 * the caller skips this part instead of failing.
 */
final class ImportGrpc implements AutoCloseable {

    static final String NAMESPACE = "bench";
    private static final long DEADLINE_SECONDS = 60;
    private static final byte[] TPM_AEAD_LABEL = "tpmkms/tpm/aead/v1".getBytes(StandardCharsets.US_ASCII);

    private final ManagedChannel channel;

    ImportGrpc(String target) {
        channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).userAgent("tpmkms-bench").build();
    }

    /**
     * Creates the import job of {@code level} and waits for it to be ACTIVE.
     *
     * @return the job, or {@code null} when the service answers UNIMPLEMENTED (no import yet)
     */
    ImportJob probe(ProtectionLevel level) throws Exception {
        try {
            return createJob(level);
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                return null;
            }
            throw e;
        }
    }

    private ImportJob createJob(ProtectionLevel level) throws InterruptedException {
        ImportJob job = keys().createImportJob(CreateImportJobRequest.newBuilder()
                .setNamespace(NAMESPACE).setJobId("bench-" + level.name().toLowerCase(java.util.Locale.ROOT))
                .setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
                .setProtectionLevel(level)
                .setWait(com.google.protobuf.Duration.newBuilder().setSeconds(60))
                .build()).getImportJob();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (job.getState() == ImportJobState.PENDING_GENERATION && System.nanoTime() < until) {
            TimeUnit.MILLISECONDS.sleep(200);
            job = keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob(job.getName()).build()).getImportJob();
        }
        if (job.getState() != ImportJobState.ACTIVE || job.getPublicKeyPem().isEmpty()) {
            throw new IllegalStateException("import job " + job.getName() + " is " + job.getState() + ", not ACTIVE");
        }
        if (level == ProtectionLevel.TPM && !job.hasAttestation()) {
            throw new IllegalStateException("TPM import job " + job.getName() + " has no attestation");
        }
        return job;
    }

    /**
     * Imports {@code warmup + iterations} fresh materials into a new import-only key of
     * {@code level}, times the last {@code iterations} calls, then checks the key's material.
     *
     * @return the row; a failed call or check counts as a failure of the row
     */
    ImportBenchmark.Row measure(ImportJob job, ProtectionLevel level, Material material, int warmup, int iterations)
            throws Exception {
        String name = "import-" + level.name().toLowerCase(java.util.Locale.ROOT) + "-"
                + (material == Material.AES_256 ? "aes" : "ec");
        String key = NAMESPACE + "/" + name;
        Algorithm algorithm = material == Material.AES_256 ? Algorithm.AES_256_GCM : Algorithm.EC_SIGN_P256_SHA256;
        keys().createKey(CreateKeyRequest.newBuilder()
                .setNamespace(NAMESPACE).setName(name)
                .setPurpose(material == Material.AES_256 ? KeyPurpose.ENCRYPT_DECRYPT : KeyPurpose.ASYMMETRIC_SIGN)
                .setAlgorithm(algorithm)
                .setProtectionLevel(level)
                .setImportOnly(true)
                .build());
        PublicKey wrappingKey = parsePem(job.getPublicKeyPem(), "RSA");
        int n = warmup + iterations;
        List<byte[]> materials = new ArrayList<>(n);
        List<ImportKeyVersionRequest> requests = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            byte[] m = material.fresh();
            materials.add(m);
            requests.add(ImportKeyVersionRequest.newBuilder()
                    .setKey(key).setImportJob(job.getName()).setAlgorithm(algorithm)
                    .setWrappedKey(ByteString.copyFrom(ImportWrapping.wrap(ImportBaselines.METHOD, wrappingKey, m)))
                    .build());
        }
        ImportBenchmark.Timer timer = new ImportBenchmark.Timer("gRPC ImportKeyVersion " + material.label + ", "
                + level.name() + " job (RSA_OAEP_3072_SHA256_AES_256)", warmup);
        int[] expected = {1};
        for (ImportKeyVersionRequest request : requests) {
            timer.time(() -> {
                ImportKeyVersionResponse r;
                try {
                    r = keys().importKeyVersion(request);
                } catch (StatusRuntimeException e) {
                    if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                        throw new ImportBenchmark.NotImplemented(e);
                    }
                    throw e;
                }
                if (r.getVersion().getVersion() != expected[0] || !r.getVersion().getImported()) {
                    throw new IllegalStateException("unexpected ImportKeyVersion answer: version "
                            + r.getVersion().getVersion() + " (expected " + expected[0] + "), imported "
                            + r.getVersion().getImported());
                }
                expected[0]++;
            });
        }
        try {
            if (material == Material.AES_256) {
                checkAes(key, level, materials.get(0));
            } else {
                checkEc(key, n, materials.get(n - 1));
            }
        } catch (Exception e) {
            timer.fail("sample check: " + LoadRunner.describe(e));
        } finally {
            materials.forEach(m -> Arrays.fill(m, (byte) 0));
        }
        return timer.row();
    }

    /** Version 1 is the primary (the first import of an import-only key); its ciphertext decrypts locally. */
    private void checkAes(String key, ProtectionLevel level, byte[] material) throws Exception {
        byte[] plaintext = new byte[64];
        new SecureRandom().nextBytes(plaintext);
        byte[] aad = "bench".getBytes(StandardCharsets.US_ASCII);
        EncryptResponse r = keys().encrypt(EncryptRequest.newBuilder().setKey(key)
                .setPlaintext(ByteString.copyFrom(plaintext))
                .setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build());
        byte[] c = r.getCiphertext().toByteArray();
        if (r.getVersion() != 1 || c[0] != 0x01) {
            throw new IllegalStateException("Encrypt used version " + r.getVersion() + ", expected the first import");
        }
        byte[] aesKey;
        int offset;
        if (level == ProtectionLevel.TPM) {
            // ADR 0009: DEK = HMAC-SHA256(K, "tpmkms/tpm/aead/v1" || salt), K = the imported 32 bytes.
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(material, "HmacSHA256"));
            mac.update(TPM_AEAD_LABEL);
            mac.update(c, 5, 16);
            aesKey = mac.doFinal();
            offset = 5 + 16;
        } else {
            aesKey = material.clone();
            offset = 5;
        }
        Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
        gcm.init(Cipher.DECRYPT_MODE, new SecretKeySpec(aesKey, "AES"), new GCMParameterSpec(128, c, offset, 12));
        gcm.updateAAD(aad);
        byte[] back = gcm.doFinal(c, offset + 12, c.length - offset - 12);
        Arrays.fill(aesKey, (byte) 0);
        if (!Arrays.equals(back, plaintext)) {
            throw new IllegalStateException("the imported AES key's ciphertext does not decrypt with the material");
        }
    }

    /** The last version's public key is the one of the last material. */
    private void checkEc(String key, int version, byte[] pkcs8) throws Exception {
        String pem = keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).setVersion(version).build()).getPem();
        PublicKey served = parsePem(pem, "EC");
        ECPrivateKey priv = (ECPrivateKey) KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
        ECPoint w = multiplyBase(priv);
        PublicKey expected = KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(w, priv.getParams()));
        if (!Arrays.equals(served.getEncoded(), expected.getEncoded())) {
            throw new IllegalStateException("GetPublicKey of version " + version + " is not the imported key's public key");
        }
    }

    /** d·G with Bouncy Castle (the JDK has no public point multiplication). */
    private static ECPoint multiplyBase(ECPrivateKey priv) {
        org.bouncycastle.asn1.x9.X9ECParameters p = org.bouncycastle.asn1.x9.ECNamedCurveTable.getByName("P-256");
        org.bouncycastle.math.ec.ECPoint q = p.getG().multiply(priv.getS()).normalize();
        return new ECPoint(q.getAffineXCoord().toBigInteger(), q.getAffineYCoord().toBigInteger());
    }

    static PublicKey parsePem(String pem, String type) throws Exception {
        return GrpcWorkloads.parsePem(pem, type);
    }

    private KeyServiceGrpc.KeyServiceBlockingStub keys() {
        return KeyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

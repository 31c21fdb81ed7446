package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.CreateKeyResponse;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.DecryptResponse;
import io.tpmkms.proto.key.v1.ExportPolicy;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.key.v1.SignRequest;
import io.tpmkms.proto.key.v1.SignResponse;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;
import java.util.concurrent.TimeUnit;

/**
 * gRPC workloads on TPM-protected keys of a key service that runs on a swtpm: Sign ECDSA P-256 and
 * RSA-2048 PKCS#1 with a precomputed SHA-256 {@code digest} (the same input as the raw baseline), and
 * Encrypt of 1 KiB with an AES_256_GCM key (one TPM2_HMAC per message in the service). Channels as in
 * {@link GrpcWorkloads}: client thread {@code i} of {@code n} uses channel {@code i % min(n, channels)}.
 */
final class TpmGrpcWorkloads implements AutoCloseable {

    static final String EC_KEY = "bench/tpm-ec";
    static final String EC_DUP_KEY = "bench/tpm-ec-dup";
    static final String RSA_KEY = "bench/tpm-rsa";
    static final String AES_KEY = "bench/tpm-aes";

    private static final long DEADLINE_SECONDS = 30;

    private final ManagedChannel[] channels;
    private PublicKey ecPublicKey;
    private PublicKey ecDupPublicKey;
    private PublicKey rsaPublicKey;

    TpmGrpcWorkloads(String target, int channelCount) {
        channels = new ManagedChannel[channelCount];
        for (int i = 0; i < channelCount; i++) {
            channels[i] = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
                    .userAgent("tpmkms-bench")
                    .build();
        }
    }

    /**
     * Creates the three keys with protection level TPM (checked in the answer), fetches the public
     * keys, connects every channel.
     */
    void prepare() throws Exception {
        create("tpm-ec", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
        create("tpm-ec-dup", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE);
        create("tpm-rsa", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.RSA_SIGN_PKCS1_2048_SHA256);
        create("tpm-aes", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
        ecPublicKey = publicKey(EC_KEY, "EC");
        ecDupPublicKey = publicKey(EC_DUP_KEY, "EC");
        rsaPublicKey = publicKey(RSA_KEY, "RSA");
        for (ManagedChannel c : channels) {
            HealthGrpc.newBlockingStub(c).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance());
        }
    }

    private void create(String name, KeyPurpose purpose, Algorithm algorithm) {
        create(name, purpose, algorithm, ExportPolicy.NON_EXPORTABLE);
    }

    private void create(String name, KeyPurpose purpose, Algorithm algorithm, ExportPolicy exportPolicy) {
        CreateKeyResponse r = keys(channels[0]).createKey(CreateKeyRequest.newBuilder()
                .setNamespace("bench").setName(name)
                .setPurpose(purpose).setAlgorithm(algorithm)
                .setProtectionLevel(ProtectionLevel.TPM).setExportPolicy(exportPolicy)
                .build());
        if (r.getKey().getExportPolicy() != exportPolicy) {
            throw new IllegalStateException("key bench/" + name + " was created " + r.getKey().getExportPolicy());
        }
        if (r.getKey().getProtectionLevel() != ProtectionLevel.TPM) {
            throw new IllegalStateException("key bench/" + name + " was created with protection level "
                    + r.getKey().getProtectionLevel() + ", not TPM");
        }
    }

    private PublicKey publicKey(String key, String type) throws Exception {
        String pem = keys(channels[0]).getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem();
        String body = pem.replaceAll("-----(BEGIN|END) PUBLIC KEY-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance(type).generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(body)));
    }

    Workload ecdsa() {
        return sign("grpc-tpm-ecdsa", "gRPC Sign ECDSA P-256, TPM key (digest)", EC_KEY, "SHA256withECDSA", true);
    }

    Workload ecdsaDuplicable() {
        return sign("grpc-tpm-ecdsa-policy", "gRPC Sign ECDSA P-256, DUPLICABLE TPM key (policy session)", EC_DUP_KEY,
                "SHA256withECDSA", true);
    }

    Workload rsa() {
        return sign("grpc-tpm-rsa", "gRPC Sign RSA-2048 PKCS#1, TPM key (digest)", RSA_KEY, "SHA256withRSA", false);
    }

    private Workload sign(String id, String description, String key, String jcaAlgorithm, boolean ec) {
        return new Workload() {
            @Override
            public String id() {
                return id;
            }

            @Override
            public String description() {
                return description;
            }

            @Override
            public Operation newOperation(int thread, int threads) throws Exception {
                ManagedChannel channel = channelFor(thread, threads);
                byte[] data = random(GrpcWorkloads.PAYLOAD_BYTES);
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(data);
                SignRequest request = SignRequest.newBuilder().setKey(key).setDigest(ByteString.copyFrom(digest)).build();
                return new Operation() {
                    private SignResponse last;

                    @Override
                    public void run() {
                        SignResponse r = keys(channel).sign(request);
                        int n = r.getSignature().size();
                        boolean shape = ec ? n >= 8 && n <= 72 && r.getSignature().byteAt(0) == 0x30 : n == 256;
                        if (!shape || r.getVersion() != 1) {
                            throw new IllegalStateException("unexpected Sign answer: " + n + " bytes, version " + r.getVersion());
                        }
                        last = r;
                    }

                    @Override
                    public void verifyLast() throws Exception {
                        if (last == null) {
                            return;
                        }
                        Signature v = Signature.getInstance(jcaAlgorithm);
                        v.initVerify(ec ? (key.equals(EC_DUP_KEY) ? ecDupPublicKey : ecPublicKey) : rsaPublicKey);
                        v.update(data);
                        if (!v.verify(last.getSignature().toByteArray())) {
                            throw new IllegalStateException(description
                                    + ": a signature does not verify with the key's public key (JCA)");
                        }
                    }
                };
            }
        };
    }

    Workload aesGcm() {
        return new Workload() {
            @Override
            public String id() {
                return "grpc-tpm-aes";
            }

            @Override
            public String description() {
                return "gRPC Encrypt AES-256-GCM 1 KiB, TPM key";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                ManagedChannel channel = channelFor(thread, threads);
                byte[] plaintext = random(GrpcWorkloads.PAYLOAD_BYTES);
                byte[] aad = random(GrpcWorkloads.AAD_BYTES);
                EncryptRequest request = EncryptRequest.newBuilder()
                        .setKey(AES_KEY)
                        .setPlaintext(ByteString.copyFrom(plaintext))
                        .setAdditionalAuthenticatedData(ByteString.copyFrom(aad))
                        .build();
                return new Operation() {
                    private EncryptResponse last;

                    @Override
                    public void run() {
                        EncryptResponse r = keys(channel).encrypt(request);
                        // At least nonce + ciphertext + tag; the TPM payload adds a 16-byte salt.
                        if (r.getCiphertext().size() < 12 + plaintext.length + 16 || r.getVersion() != 1) {
                            throw new IllegalStateException("unexpected Encrypt answer: "
                                    + r.getCiphertext().size() + " bytes, version " + r.getVersion());
                        }
                        last = r;
                    }

                    @Override
                    public void verifyLast() {
                        if (last == null) {
                            return;
                        }
                        DecryptResponse d = keys(channel).decrypt(DecryptRequest.newBuilder()
                                .setKey(AES_KEY)
                                .setCiphertext(last.getCiphertext())
                                .setAdditionalAuthenticatedData(ByteString.copyFrom(aad))
                                .build());
                        if (!Arrays.equals(d.getPlaintext().toByteArray(), plaintext)) {
                            throw new IllegalStateException("Decrypt of a TPM-key ciphertext did not give the plaintext back");
                        }
                    }
                };
            }
        };
    }

    private ManagedChannel channelFor(int thread, int threads) {
        return channels[thread % Math.min(threads, channels.length)];
    }

    private static KeyServiceGrpc.KeyServiceBlockingStub keys(ManagedChannel channel) {
        return KeyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    @Override
    public void close() {
        for (ManagedChannel c : channels) {
            c.shutdownNow();
        }
        for (ManagedChannel c : channels) {
            try {
                c.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}

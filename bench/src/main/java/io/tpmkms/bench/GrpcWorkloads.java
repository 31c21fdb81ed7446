package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.DecryptResponse;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.GenerateRandomRequest;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.key.v1.SignRequest;
import io.tpmkms.proto.key.v1.SignResponse;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;
import java.util.concurrent.TimeUnit;

/**
 * The three gRPC workloads against one running key service, over a small pool of channels.
 *
 * <p>Channel choice: client thread {@code i} of {@code n} uses channel {@code i % min(n, channels)}.
 * One channel is one HTTP/2 connection, so with a single channel every call of every thread goes
 * through one connection and one Netty event loop on each side; grpc-java's advice for high
 * concurrency is a few channels, not one per thread. A handful (default 4) spreads the load over
 * the server's event loops without turning the benchmark into a connection-count test. All three
 * workloads use the same pool, so the empty call is a like-for-like baseline.
 *
 * <p>Every call carries a 30 s deadline. Not thread-safe to build; the operations it hands out are
 * confined to their thread. {@link #close()} shuts the channels down.
 */
final class GrpcWorkloads implements AutoCloseable {

    static final String AES_KEY = "bench/aes";
    static final String EC_KEY = "bench/ec";
    static final String RSA_KEY = "bench/rsa";
    static final int PAYLOAD_BYTES = 1024;
    static final int AAD_BYTES = 16;
    /** 0x01 | uint32 version | nonce(12) | ciphertext | tag(16), see key_service.proto. */
    static final int CIPHERTEXT_BYTES = 1 + 4 + 12 + PAYLOAD_BYTES + 16;

    private static final long DEADLINE_SECONDS = 30;

    private final ManagedChannel[] channels;
    private PublicKey ecPublicKey;
    private PublicKey rsaPublicKey;

    GrpcWorkloads(String target, int channelCount) {
        this(target, channelCount, InsecureChannelCredentials.create());
    }

    /** Over {@code credentials} (TLS: the target's host name must be one the server's certificate names). */
    GrpcWorkloads(String target, int channelCount, io.grpc.ChannelCredentials credentials) {
        channels = new ManagedChannel[channelCount];
        for (int i = 0; i < channelCount; i++) {
            channels[i] = Grpc.newChannelBuilder(target, credentials)
                    .userAgent("tpmkms-bench")
                    .build();
        }
    }

    /**
     * Creates the benchmark keys (software protection, so the figure is the service's own cost) and
     * fetches the EC public key used to verify signatures; connects every channel.
     *
     * @throws StatusRuntimeException when the service refuses, e.g. the keys already exist
     */
    void prepare() throws Exception {
        prepare(true);
    }

    /** As {@link #prepare()}; {@code create=false}: the keys exist (another workload set made them). */
    void prepare(boolean create) throws Exception {
        KeyServiceGrpc.KeyServiceBlockingStub keys = keys(channels[0]);
        if (create) createKeys(keys);
        String pem = keys(channels[0]).getPublicKey(GetPublicKeyRequest.newBuilder().setKey(EC_KEY).build()).getPem();
        ecPublicKey = parsePem(pem);
        rsaPublicKey = parsePem(keys(channels[0]).getPublicKey(GetPublicKeyRequest.newBuilder().setKey(RSA_KEY).build())
                .getPem(), "RSA");
        for (ManagedChannel c : channels) {
            health(c).check(HealthCheckRequest.getDefaultInstance());
        }
    }

    private static void createKeys(KeyServiceGrpc.KeyServiceBlockingStub keys) {
        keys.createKey(CreateKeyRequest.newBuilder()
                .setNamespace("bench").setName("aes")
                .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setAlgorithm(Algorithm.AES_256_GCM)
                .setProtectionLevel(ProtectionLevel.SOFTWARE)
                .build());
        keys.createKey(CreateKeyRequest.newBuilder()
                .setNamespace("bench").setName("ec")
                .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
                .setProtectionLevel(ProtectionLevel.SOFTWARE)
                .build());
        keys.createKey(CreateKeyRequest.newBuilder()
                .setNamespace("bench").setName("rsa")
                .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.RSA_SIGN_PKCS1_2048_SHA256)
                .setProtectionLevel(ProtectionLevel.SOFTWARE)
                .build());
    }

    Workload emptyCall() {
        return new Workload() {
            @Override
            public String id() {
                return "grpc-empty";
            }

            @Override
            public String description() {
                return "gRPC empty call (Health/Check)";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                ManagedChannel channel = channelFor(thread, threads);
                HealthCheckRequest request = HealthCheckRequest.getDefaultInstance();
                return () -> {
                    HealthCheckResponse r = health(channel).check(request);
                    if (r.getStatus() != HealthCheckResponse.ServingStatus.SERVING) {
                        throw new IllegalStateException("health answered " + r.getStatus());
                    }
                };
            }
        };
    }

    Workload encrypt() {
        return new Workload() {
            @Override
            public String id() {
                return "grpc-encrypt";
            }

            @Override
            public String description() {
                return "gRPC Encrypt AES-256-GCM, 1 KiB + 16 B AAD";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                ManagedChannel channel = channelFor(thread, threads);
                SecureRandom random = new SecureRandom();
                byte[] plaintext = random(random, PAYLOAD_BYTES);
                byte[] aad = random(random, AAD_BYTES);
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
                        if (r.getCiphertext().size() != CIPHERTEXT_BYTES || r.getVersion() != 1) {
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
                            throw new IllegalStateException("Decrypt of a benchmark ciphertext did not give the plaintext back");
                        }
                    }
                };
            }
        };
    }

    Workload sign() {
        return sign("grpc-sign", "gRPC Sign ECDSA P-256 (SHA-256), 1 KiB", false);
    }

    /** Sign with {@code bench/rsa} (RSA-2048 PKCS#1 v1.5, SHA-256), 1 KiB. */
    Workload signRsa() {
        return sign("grpc-sign-rsa", "gRPC Sign RSA-2048 PKCS#1 (SHA-256), 1 KiB", true);
    }

    /** A sign workload under another id and description (the same calls against another service). */
    Workload sign(String id, String description, boolean rsa) {
        String keyName = rsa ? RSA_KEY : EC_KEY;
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
            public Operation newOperation(int thread, int threads) {
                ManagedChannel channel = channelFor(thread, threads);
                byte[] data = random(new SecureRandom(), PAYLOAD_BYTES);
                SignRequest request = SignRequest.newBuilder().setKey(keyName).setData(ByteString.copyFrom(data)).build();
                return new Operation() {
                    private SignResponse last;

                    @Override
                    public void run() {
                        SignResponse r = keys(channel).sign(request);
                        int n = r.getSignature().size();
                        // RSA-2048: 256 bytes; ECDSA: a DER SEQUENCE of two INTEGERs of at most 33 bytes each.
                        boolean shape = rsa ? n == 256 : n >= 8 && n <= 72 && r.getSignature().byteAt(0) == 0x30;
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
                        Signature v = Signature.getInstance(rsa ? "SHA256withRSA" : "SHA256withECDSA");
                        v.initVerify(rsa ? rsaPublicKey : ecPublicKey);
                        v.update(data);
                        if (!v.verify(last.getSignature().toByteArray())) {
                            throw new IllegalStateException("a benchmark signature does not verify with the key's public key");
                        }
                    }
                };
            }
        };
    }

    /**
     * Diagnostic, not in the default set: the cheapest KeyService method (1 random byte from the
     * software backend). It takes the same path as Encrypt through the service's gRPC adapter and
     * worker-thread dispatch but does almost no work, so Encrypt minus this is the cost of the
     * Encrypt path itself, and this minus the empty call is the cost of reaching a KeyService method.
     */
    Workload generateRandom() {
        return new Workload() {
            @Override
            public String id() {
                return "grpc-random";
            }

            @Override
            public String description() {
                return "gRPC GenerateRandom 1 B (KeyService floor)";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                ManagedChannel channel = channelFor(thread, threads);
                GenerateRandomRequest request = GenerateRandomRequest.newBuilder()
                        .setLengthBytes(1).setProtectionLevel(ProtectionLevel.SOFTWARE).build();
                return () -> {
                    int n = keys(channel).generateRandom(request).getData().size();
                    if (n != 1) {
                        throw new IllegalStateException("GenerateRandom answered " + n + " bytes");
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

    private static HealthGrpc.HealthBlockingStub health(ManagedChannel channel) {
        return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
    }

    private static byte[] random(SecureRandom random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    static PublicKey parsePem(String pem) throws Exception {
        return parsePem(pem, "EC");
    }

    static PublicKey parsePem(String pem, String type) throws Exception {
        String body = pem.replaceAll("-----(BEGIN|END) PUBLIC KEY-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance(type).generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(body)));
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

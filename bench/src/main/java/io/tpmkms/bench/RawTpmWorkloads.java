package io.tpmkms.bench;

import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.TpmConfig;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;

/**
 * The raw TPM rate: the same {@link TpmKeyProtectionBackend} the key service uses, in this JVM on
 * its own connection to the swtpm, with no gRPC, database or key catalogue in between. Its
 * {@code sign} is TSS.Java's TPM2_Sign on the loaded key (loaded once, then kept in the backend's
 * object cache); its AEAD {@code encrypt} is one TPM2_HMAC (per-message key) plus AES-256-GCM in
 * software.
 *
 * <p>Every TPM command goes through the backend's one connection lock: more threads only queue on
 * it (and swtpm is single-threaded anyway), so the thread count shows the cost of that queue, not
 * parallelism. {@link #close()} closes the backend and with it the connection, so the swtpm is free
 * for the next client (swtpm serves one connection at a time).
 */
final class RawTpmWorkloads implements AutoCloseable {

    private final TpmKeyProtectionBackend backend;
    private final GeneratedKey ec;
    private final GeneratedKey ecDuplicable;
    private final GeneratedKey ecBound;
    private final GeneratedKey rsa;
    private final GeneratedKey aes;

    /** Opens the backend with a random 32-byte auth secret and creates one key of each kind. */
    RawTpmWorkloads(TpmConfig config) {
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        backend = TpmKeyProtectionBackend.open(config, secret);
        try {
            ec = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
            ecDuplicable = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256,
                    io.tpmkms.protection.ExportPolicy.DUPLICABLE));
            ecBound = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256,
                    io.tpmkms.protection.ExportPolicy.NON_EXPORTABLE, io.tpmkms.protection.PlatformBinding.current(16)));
            rsa = backend.generate(new KeySpec(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256));
            aes = backend.generate(new KeySpec(KeyAlgorithm.AES_256_GCM));
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    Workload ecdsa() throws Exception {
        return sign("raw-tpm-ecdsa", "raw TPM Sign ECDSA P-256 (SHA-256 digest)", ec, "EC", "SHA256withECDSA");
    }

    /** A DUPLICABLE key: every Sign is PolicyCommandCode + PolicyAuthValue + PolicyOR + an HMAC-authorized Sign. */
    Workload ecdsaDuplicable() throws Exception {
        return sign("raw-tpm-ecdsa-policy", "raw TPM Sign ECDSA P-256, DUPLICABLE key (policy session)", ecDuplicable,
                "EC", "SHA256withECDSA");
    }

    /**
     * A key bound to PCR 16 (ADR 0036): every Sign is PolicyCommandCode + PolicyPCR + PolicyAuthValue + PolicyOR
     * + an HMAC-authorized Sign.
     */
    Workload ecdsaPcrBound() throws Exception {
        return sign("raw-tpm-ecdsa-pcr", "raw TPM Sign ECDSA P-256, PCR-bound key (PolicyPCR)", ecBound,
                "EC", "SHA256withECDSA");
    }

    /**
     * TPM2_Duplicate of the DUPLICABLE key to this TPM's own SRK (certified once), as ExportKeyVersion
     * runs it: ObjectChangeAuth, LoadExternal + VerifySignature of the authority's approval, the DUP
     * branch, Duplicate. The last blob is imported back to check it.
     */
    Workload export() {
        byte[] srk = backend.certifySrk(null).certifiedTpmPublic();
        return new Workload() {
            @Override
            public String id() {
                return "raw-tpm-export";
            }

            @Override
            public String description() {
                return "raw TPM export (TPM2_Duplicate) ECDSA P-256 to a storage key";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                return new Operation() {
                    private io.tpmkms.protection.tpm.Duplication last;

                    @Override
                    public void run() {
                        last = backend.duplicate(ecDuplicable.handle(), srk, new byte[0]);
                    }

                    @Override
                    public void verifyLast() {
                        if (last == null) {
                            return;
                        }
                        GeneratedKey back = backend.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, last, new byte[0]);
                        if (!Arrays.equals(back.publicKeyDer(), ecDuplicable.publicKeyDer())) {
                            throw new IllegalStateException("the duplicate imported back is another key");
                        }
                    }
                };
            }
        };
    }

    /** TPM2_Import of a duplication blob (and ObjectChangeAuth to the backend's own auth), as ImportKeyVersion runs it. */
    Workload importDuplicate() {
        byte[] srk = backend.certifySrk(null).certifiedTpmPublic();
        io.tpmkms.protection.tpm.Duplication blob = backend.duplicate(ecDuplicable.handle(), srk, new byte[0]);
        return new Workload() {
            @Override
            public String id() {
                return "raw-tpm-import-duplicate";
            }

            @Override
            public String description() {
                return "raw TPM import of a duplication blob (TPM2_Import + ObjectChangeAuth)";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                return new Operation() {
                    private GeneratedKey last;

                    @Override
                    public void run() {
                        last = backend.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, blob, new byte[0]);
                    }

                    @Override
                    public void verifyLast() {
                        if (last != null && !Arrays.equals(last.publicKeyDer(), ecDuplicable.publicKeyDer())) {
                            throw new IllegalStateException("the imported duplicate is another key");
                        }
                    }
                };
            }
        };
    }

    Workload rsa() throws Exception {
        return sign("raw-tpm-rsa", "raw TPM Sign RSA-2048 PKCS#1 (SHA-256 digest)", rsa, "RSA", "SHA256withRSA");
    }

    private Workload sign(String id, String description, GeneratedKey key, String keyType, String jcaAlgorithm)
            throws Exception {
        PublicKey publicKey = KeyFactory.getInstance(keyType).generatePublic(new X509EncodedKeySpec(key.publicKeyDer()));
        KeyHandle handle = key.handle();
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
                byte[] data = random(GrpcWorkloads.PAYLOAD_BYTES);
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(data);
                return new Operation() {
                    private byte[] last;

                    @Override
                    public void run() {
                        last = backend.sign(handle, digest);
                    }

                    @Override
                    public void verifyLast() throws Exception {
                        if (last == null) {
                            return;
                        }
                        Signature v = Signature.getInstance(jcaAlgorithm);
                        v.initVerify(publicKey);
                        v.update(data);
                        if (!v.verify(last)) {
                            throw new IllegalStateException(description + ": the signature does not verify (JCA)");
                        }
                    }
                };
            }
        };
    }

    Workload aesGcm() {
        KeyHandle handle = aes.handle();
        return new Workload() {
            @Override
            public String id() {
                return "raw-tpm-aes";
            }

            @Override
            public String description() {
                return "raw TPM Encrypt AES-256-GCM 1 KiB (TPM2_HMAC + GCM)";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                byte[] plaintext = random(GrpcWorkloads.PAYLOAD_BYTES);
                byte[] aad = random(GrpcWorkloads.AAD_BYTES);
                return new Operation() {
                    private byte[] last;

                    @Override
                    public void run() {
                        byte[] out = backend.encrypt(handle, plaintext, aad);
                        if (out.length != 16 + 12 + plaintext.length + 16) {
                            throw new IllegalStateException("raw TPM encrypt gave " + out.length + " bytes");
                        }
                        last = out;
                    }

                    @Override
                    public void verifyLast() {
                        if (last != null && !Arrays.equals(backend.decrypt(handle, last, aad), plaintext)) {
                            throw new IllegalStateException("raw TPM decrypt did not give the plaintext back");
                        }
                    }
                };
            }
        };
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    @Override
    public void close() {
        backend.close();
    }
}

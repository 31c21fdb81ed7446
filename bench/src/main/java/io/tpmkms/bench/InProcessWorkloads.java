package io.tpmkms.bench;

import java.security.DrbgParameters;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * The same cryptography as the gRPC workloads, done in this JVM and no service in between: the floor
 * the service cost is measured against, on each provider the service could choose (ADR 0027): the
 * JDK's (SunEC, SunRsaSign, SunJCE), Bouncy Castle, and the native one (Conscrypt, BoringSSL). Each
 * thread has its own
 * {@code Cipher}/{@code Signature} and a DRBG {@code SecureRandom} configured as the software backend
 * configures its own (256-bit, reseed-only), so the difference to the gRPC figures is the service.
 */
final class InProcessWorkloads {

    private InProcessWorkloads() {
    }

    /** A JCA provider under test; {@code null} provider: the JDK's default lookup. */
    record Jca(String suffix, String label, java.security.Provider provider) {
        static final Jca JDK = new Jca("", "JDK", null);
        static final Jca BOUNCY_CASTLE = new Jca("-bc", "Bouncy Castle",
                new org.bouncycastle.jce.provider.BouncyCastleProvider());

        /** Conscrypt; fails (and the run with it) where its native library does not load. */
        static Jca conscrypt() {
            return new Jca("-native", "Conscrypt", org.conscrypt.Conscrypt.newProvider());
        }

        Signature signature(String algorithm) throws GeneralSecurityException {
            return provider == null ? Signature.getInstance(algorithm) : Signature.getInstance(algorithm, provider);
        }

        Cipher cipher(String transformation) throws GeneralSecurityException {
            return provider == null ? Cipher.getInstance(transformation) : Cipher.getInstance(transformation, provider);
        }

        KeyPairGenerator keyPairGenerator(String algorithm) throws GeneralSecurityException {
            return provider == null ? KeyPairGenerator.getInstance(algorithm)
                    : KeyPairGenerator.getInstance(algorithm, provider);
        }
    }

    /** AES-256-GCM encryption of 1 KiB with a 16-byte AAD and a fresh random 12-byte nonce per operation. */
    static Workload aesGcm() throws GeneralSecurityException {
        return aesGcm(Jca.JDK);
    }

    static Workload aesGcm(Jca jca) throws GeneralSecurityException {
        KeyGenerator g = KeyGenerator.getInstance("AES");
        g.init(256);
        SecretKey key = g.generateKey();
        return new Workload() {
            @Override
            public String id() {
                return "local-aes-gcm" + jca.suffix();
            }

            @Override
            public String description() {
                return "in-process " + jca.label() + " AES-256-GCM, 1 KiB + 16 B AAD";
            }

            @Override
            public Operation newOperation(int thread, int threads) throws Exception {
                SecureRandom random = drbg();
                Cipher cipher = jca.cipher("AES/GCM/NoPadding");
                byte[] plaintext = new byte[GrpcWorkloads.PAYLOAD_BYTES];
                byte[] aad = new byte[GrpcWorkloads.AAD_BYTES];
                random.nextBytes(plaintext);
                random.nextBytes(aad);
                return new Operation() {
                    private final byte[] out = new byte[12 + plaintext.length + 16];
                    private boolean done;

                    @Override
                    public void run() throws Exception {
                        byte[] nonce = new byte[12];
                        random.nextBytes(nonce);
                        System.arraycopy(nonce, 0, out, 0, 12);
                        cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, nonce));
                        cipher.updateAAD(aad);
                        int n = cipher.doFinal(plaintext, 0, plaintext.length, out, 12);
                        if (n != plaintext.length + 16) {
                            throw new IllegalStateException("GCM wrote " + n + " bytes");
                        }
                        done = true;
                    }

                    @Override
                    public void verifyLast() throws Exception {
                        if (!done) {
                            return;
                        }
                        Cipher d = Cipher.getInstance("AES/GCM/NoPadding");
                        d.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, out, 0, 12));
                        d.updateAAD(aad);
                        if (!Arrays.equals(d.doFinal(out, 12, out.length - 12), plaintext)) {
                            throw new IllegalStateException("in-process GCM round trip failed");
                        }
                    }
                };
            }
        };
    }

    /** SHA256withECDSA over 1 KiB with a P-256 key. */
    static Workload ecdsaP256() throws GeneralSecurityException {
        return sign(Jca.JDK, false);
    }

    /**
     * SHA256withECDSA with a P-256 key, or SHA256withRSA (PKCS#1 v1.5) with an RSA-2048 key, over
     * 1 KiB, on {@code jca}; the last signature is verified with the JDK.
     */
    static Workload sign(Jca jca, boolean rsa) throws GeneralSecurityException {
        KeyPairGenerator g = jca.keyPairGenerator(rsa ? "RSA" : "EC");
        if (rsa) {
            g.initialize(2048);
        } else {
            g.initialize(new ECGenParameterSpec("secp256r1"));
        }
        KeyPair pair = g.generateKeyPair();
        String algorithm = rsa ? "SHA256withRSA" : "SHA256withECDSA";
        return new Workload() {
            @Override
            public String id() {
                return (rsa ? "local-rsa" : "local-ecdsa") + jca.suffix();
            }

            @Override
            public String description() {
                return "in-process " + jca.label() + (rsa ? " RSA-2048 PKCS#1" : " ECDSA P-256") + " (SHA-256), 1 KiB";
            }

            @Override
            public Operation newOperation(int thread, int threads) throws Exception {
                SecureRandom random = drbg();
                Signature signer = jca.signature(algorithm);
                byte[] data = new byte[GrpcWorkloads.PAYLOAD_BYTES];
                random.nextBytes(data);
                return new Operation() {
                    private byte[] last;

                    @Override
                    public void run() throws Exception {
                        signer.initSign(pair.getPrivate(), random);
                        signer.update(data);
                        last = signer.sign();
                    }

                    @Override
                    public void verifyLast() throws Exception {
                        if (last == null) {
                            return;
                        }
                        Signature v = Signature.getInstance(algorithm);
                        v.initVerify(java.security.KeyFactory.getInstance(rsa ? "RSA" : "EC").generatePublic(
                                new java.security.spec.X509EncodedKeySpec(pair.getPublic().getEncoded())));
                        v.update(data);
                        if (!v.verify(last)) {
                            throw new IllegalStateException("in-process " + algorithm + " signature does not verify");
                        }
                    }
                };
            }
        };
    }

    private static SecureRandom drbg() {
        try {
            return SecureRandom.getInstance("DRBG",
                    DrbgParameters.instantiation(256, DrbgParameters.Capability.RESEED_ONLY, null));
        } catch (NoSuchAlgorithmException e) {
            return new SecureRandom();
        }
    }
}

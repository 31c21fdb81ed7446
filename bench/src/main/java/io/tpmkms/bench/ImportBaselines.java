package io.tpmkms.bench;

import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.TpmConfig;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;

/**
 * The baselines of the import suite, measured in the benchmark JVM with no service in between:
 * what unwrapping and loading a key costs at the least.
 *
 * <ul>
 *   <li>{@link #jca}: the whole unwrap in software — RSA-OAEP-3072 decrypt of the one-time AES key,
 *       AES-KWP unwrap, and parsing the material (a {@code SecretKeySpec} for AES, {@code KeyFactory}
 *       PKCS#8 for EC), as a SOFTWARE import job does before the software backend wraps the key.
 *   <li>{@link #rawTpm}: the TPM commands an import on a TPM job needs, through the same
 *       {@link TpmKeyProtectionBackend} the key service uses, on its own connection:
 *       TPM2_RSA_Decrypt of the OAEP part with a TPM-generated RSA_DECRYPT_OAEP_3072_SHA256 key, the
 *       AES-KWP unwrap in software, then {@link #tpmCreateStep}.
 * </ul>
 *
 * <p>Material is fresh per iteration and wrapped client-side ({@link ImportWrapping#wrap}) before
 * the timing starts. Single-threaded: an import is an administrative call, its latency is the figure.
 */
final class ImportBaselines {

    private static final OAEPParameterSpec OAEP = new OAEPParameterSpec("SHA-256", "MGF1",
            MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT);
    static final ImportWrapping.Method METHOD = ImportWrapping.Method.RSA_OAEP_3072_SHA256_AES_256;

    /** What the raw TPM row's create step does; see {@link #tpmCreateStep}. */
    static final String TPM_CREATE_STEP_LABEL = "importKey (TPM2_Create with the AES key / TPM2_Import of the EC key)";

    private ImportBaselines() {
    }

    /** The two kinds of material the suite imports. */
    enum Material {
        AES_256("AES-256", KeyAlgorithm.AES_256_GCM),
        EC_P256("EC P-256", KeyAlgorithm.EC_SIGN_P256_SHA256);

        final String label;
        final KeyAlgorithm algorithm;

        Material(String label, KeyAlgorithm algorithm) {
            this.label = label;
            this.algorithm = algorithm;
        }

        /** Fresh material: 32 random bytes, or a JCA-generated P-256 key as PKCS#8 DER. */
        byte[] fresh() throws Exception {
            if (this == AES_256) {
                byte[] k = new byte[32];
                new SecureRandom().nextBytes(k);
                return k;
            }
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair().getPrivate().getEncoded();
        }
    }

    /** The software unwrap of {@code iterations} imports of {@code material} (plus {@code warmup} unmeasured). */
    static ImportBenchmark.Row jca(Material material, int warmup, int iterations) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(3072);
        KeyPair wrapping = g.generateKeyPair();
        List<byte[]> blobs = wrapAll(material, wrapping.getPublic(), warmup + iterations);
        PrivateKey privateKey = wrapping.getPrivate();
        ImportBenchmark.Timer timer = new ImportBenchmark.Timer(
                "JCA in-process: RSA-OAEP-3072 decrypt + AES-KWP unwrap + parse, " + material.label, warmup);
        for (byte[] blob : blobs) {
            timer.time(() -> {
                ImportWrapping.Parts parts = ImportWrapping.split(METHOD, blob);
                Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
                oaep.init(Cipher.DECRYPT_MODE, privateKey, OAEP);
                byte[] aesKey = oaep.doFinal(parts.oaep());
                byte[] plain = ImportWrapping.unwrapKwp(aesKey, parts.kwp());
                try {
                    if (material == Material.AES_256) {
                        if (new SecretKeySpec(plain, "AES").getEncoded().length != 32) {
                            throw new IllegalStateException("unwrapped AES key is not 32 bytes");
                        }
                    } else {
                        KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(plain));
                    }
                } finally {
                    Arrays.fill(aesKey, (byte) 0);
                    Arrays.fill(plain, (byte) 0);
                }
            });
        }
        return timer.row();
    }

    /**
     * The TPM commands of {@code iterations} imports of each material, on one backend connection that
     * is closed before this returns (the swtpm serves one connection at a time).
     */
    static List<ImportBenchmark.Row> rawTpm(TpmConfig config, int warmup, int iterations) throws Exception {
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        List<ImportBenchmark.Row> rows = new ArrayList<>();
        try (TpmKeyProtectionBackend backend = TpmKeyProtectionBackend.open(config, secret)) {
            GeneratedKey wrapping = backend.generate(new KeySpec(METHOD.wrappingKeyAlgorithm()));
            PublicKey publicKey = KeyFactory.getInstance("RSA")
                    .generatePublic(new X509EncodedKeySpec(wrapping.publicKeyDer()));
            for (Material material : Material.values()) {
                List<byte[]> blobs = wrapAll(material, publicKey, warmup + iterations);
                List<KeyHandle> made = new ArrayList<>();
                ImportBenchmark.Timer timer = new ImportBenchmark.Timer("raw TPM: TPM2_RSA_Decrypt (OAEP-3072) + AES-KWP + "
                        + TPM_CREATE_STEP_LABEL + ", " + material.label, warmup);
                for (byte[] blob : blobs) {
                    timer.time(() -> {
                        ImportWrapping.Parts parts = ImportWrapping.split(METHOD, blob);
                        byte[] aesKey = backend.asymmetricDecrypt(wrapping.handle(), parts.oaep());
                        byte[] plain = ImportWrapping.unwrapKwp(aesKey, parts.kwp());
                        try {
                            made.add(tpmCreateStep(backend, material.algorithm, plain).handle());
                        } finally {
                            Arrays.fill(aesKey, (byte) 0);
                            Arrays.fill(plain, (byte) 0);
                        }
                    });
                }
                for (KeyHandle h : made) {
                    backend.destroy(h);
                }
                rows.add(timer.row());
            }
            backend.destroy(wrapping.handle());
        }
        return rows;
    }

    /**
     * The create/import step of the raw TPM baseline: the adapter's {@code importKey}
     * (TPM2_Create with the AES key as sensitive data; TPM2_Import of the EC key, then TPM2_Load).
     */
    static GeneratedKey tpmCreateStep(TpmKeyProtectionBackend backend, KeyAlgorithm algorithm, byte[] material) {
        try (KeyMaterial m = KeyMaterial.parse(algorithm, material)) {
            return backend.importKey(new KeySpec(algorithm), m);
        }
    }

    /** {@code n} blobs of fresh material wrapped for {@code wrappingKey} (done before any timing). */
    static List<byte[]> wrapAll(Material material, PublicKey wrappingKey, int n) throws Exception {
        List<byte[]> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            byte[] m = material.fresh();
            out.add(ImportWrapping.wrap(METHOD, wrappingKey, m));
            Arrays.fill(m, (byte) 0);
        }
        return out;
    }
}

package io.tpmkms.cli.format;

import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.ExportPolicy;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersionState;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * The words the CLI uses for the contract's enums, in both directions: what the user types
 * ({@code --purpose sign}) is what tables show. Unspecified values show as {@code -}.
 */
public final class Vocabulary<E extends Enum<E>> {

    public static final Vocabulary<KeyPurpose> PURPOSE = new Vocabulary<>("purpose", KeyPurpose.class, Map.of(
            "encrypt", KeyPurpose.ENCRYPT_DECRYPT,
            "sign", KeyPurpose.ASYMMETRIC_SIGN,
            "asymmetric-decrypt", KeyPurpose.ASYMMETRIC_DECRYPT,
            "mac", KeyPurpose.MAC));

    public static final Vocabulary<Algorithm> ALGORITHM = new Vocabulary<>("algorithm", Algorithm.class, Map.ofEntries(
            Map.entry("aes-256-gcm", Algorithm.AES_256_GCM),
            Map.entry("ec-p256-sha256", Algorithm.EC_SIGN_P256_SHA256),
            Map.entry("ec-p384-sha384", Algorithm.EC_SIGN_P384_SHA384),
            Map.entry("rsa-pkcs1-2048-sha256", Algorithm.RSA_SIGN_PKCS1_2048_SHA256),
            Map.entry("rsa-pkcs1-3072-sha256", Algorithm.RSA_SIGN_PKCS1_3072_SHA256),
            Map.entry("rsa-pkcs1-4096-sha256", Algorithm.RSA_SIGN_PKCS1_4096_SHA256),
            Map.entry("rsa-pss-2048-sha256", Algorithm.RSA_SIGN_PSS_2048_SHA256),
            Map.entry("rsa-pss-3072-sha256", Algorithm.RSA_SIGN_PSS_3072_SHA256),
            Map.entry("rsa-pss-4096-sha256", Algorithm.RSA_SIGN_PSS_4096_SHA256),
            Map.entry("rsa-oaep-2048-sha256", Algorithm.RSA_DECRYPT_OAEP_2048_SHA256),
            Map.entry("rsa-oaep-3072-sha256", Algorithm.RSA_DECRYPT_OAEP_3072_SHA256),
            Map.entry("rsa-oaep-4096-sha256", Algorithm.RSA_DECRYPT_OAEP_4096_SHA256),
            Map.entry("hmac-sha256", Algorithm.HMAC_SHA256)));

    /** How key material is wrapped for an import job (the words of {@code import-jobs create --method}). */
    public static final Vocabulary<ImportMethod> IMPORT_METHOD = new Vocabulary<>("import method", ImportMethod.class,
            Map.of(
                    "rsa-oaep-3072-sha256-aes-256", ImportMethod.RSA_OAEP_3072_SHA256_AES_256,
                    "rsa-oaep-4096-sha256-aes-256", ImportMethod.RSA_OAEP_4096_SHA256_AES_256,
                    "rsa-oaep-3072-sha256", ImportMethod.RSA_OAEP_3072_SHA256,
                    "rsa-oaep-4096-sha256", ImportMethod.RSA_OAEP_4096_SHA256,
                    "tpm2-duplication", ImportMethod.TPM2_DUPLICATION));

    /** Whether a key may leave its TPM (ADR 0025; the words of {@code keys create --export-policy}). */
    public static final Vocabulary<ExportPolicy> EXPORT_POLICY = new Vocabulary<>("export policy", ExportPolicy.class,
            Map.of(
                    "non-exportable", ExportPolicy.NON_EXPORTABLE,
                    "duplicable", ExportPolicy.DUPLICABLE));

    public static final Vocabulary<ProtectionLevel> PROTECTION = new Vocabulary<>("protection level",
            ProtectionLevel.class, Map.of(
                    "software", ProtectionLevel.SOFTWARE,
                    "tpm", ProtectionLevel.TPM));

    /**
     * Key version states as typed ({@code keys list --primary-state} and {@code --any-version-state}): the words
     * {@link #state(KeyVersionState)} shows, the enum name lower-case with hyphens.
     */
    public static final Vocabulary<KeyVersionState> STATE = new Vocabulary<>("key version state",
            KeyVersionState.class, Map.of(
                    "pending-import", KeyVersionState.PENDING_IMPORT,
                    "enabled", KeyVersionState.ENABLED,
                    "disabled", KeyVersionState.DISABLED,
                    "destroy-scheduled", KeyVersionState.DESTROY_SCHEDULED,
                    "destroyed", KeyVersionState.DESTROYED,
                    "compromised", KeyVersionState.COMPROMISED));

    /** How a key version state is shown: the enum name, lower-case, with hyphens. */
    public static String state(KeyVersionState state) {
        if (state == KeyVersionState.KEY_VERSION_STATE_UNSPECIFIED) {
            return "-";
        }
        return state == KeyVersionState.UNRECOGNIZED ? "unknown" : kebab(state.name());
    }

    /** Import job states are only shown: {@code pending-generation}, {@code active}, {@code expired}. */
    public static String state(ImportJobState state) {
        if (state == ImportJobState.IMPORT_JOB_STATE_UNSPECIFIED) {
            return "-";
        }
        return state == ImportJobState.UNRECOGNIZED ? "unknown" : kebab(state.name());
    }

    private final String what;
    private final Map<String, E> byWord;
    private final Map<E, String> byValue = new LinkedHashMap<>();

    private Vocabulary(String what, Class<E> type, Map<String, E> words) {
        this.what = what;
        this.byWord = new LinkedHashMap<>();
        // Declaration order of the enum, so help texts and errors list values in contract order.
        for (E value : type.getEnumConstants()) {
            words.forEach((word, v) -> {
                if (v == value) {
                    byWord.put(word, v);
                    byValue.put(v, word);
                }
            });
        }
    }

    public E parse(String word) {
        E value = byWord.get(word.toLowerCase(Locale.ROOT));
        if (value == null) {
            throw new TypeConversionException(
                    "unknown " + what + " '" + word + "' (expected one of: " + String.join(", ", byWord.keySet()) + ")");
        }
        return value;
    }

    public String show(E value) {
        String word = byValue.get(value);
        if (word != null) {
            return word;
        }
        return value.name().endsWith("_UNSPECIFIED") ? "-" : kebab(value.name());
    }

    public Iterable<String> words() {
        return byWord.keySet();
    }

    private static String kebab(String enumName) {
        return enumName.toLowerCase(Locale.ROOT).replace('_', '-');
    }

    // picocli wants classes with no-argument constructors for converters and completion candidates.

    public static final class PurposeConverter implements ITypeConverter<KeyPurpose> {
        @Override
        public KeyPurpose convert(String value) {
            return PURPOSE.parse(value);
        }
    }

    public static final class AlgorithmConverter implements ITypeConverter<Algorithm> {
        @Override
        public Algorithm convert(String value) {
            return ALGORITHM.parse(value);
        }
    }

    public static final class ProtectionConverter implements ITypeConverter<ProtectionLevel> {
        @Override
        public ProtectionLevel convert(String value) {
            return PROTECTION.parse(value);
        }
    }

    public static final class StateConverter implements ITypeConverter<KeyVersionState> {
        @Override
        public KeyVersionState convert(String value) {
            return STATE.parse(value);
        }
    }

    public static final class ImportMethodConverter implements ITypeConverter<ImportMethod> {
        @Override
        public ImportMethod convert(String value) {
            return IMPORT_METHOD.parse(value);
        }
    }

    public static final class ExportPolicyConverter implements ITypeConverter<ExportPolicy> {
        @Override
        public ExportPolicy convert(String value) {
            return EXPORT_POLICY.parse(value);
        }
    }

    public static final class ExportPolicyWords extends ArrayList<String> {
        public ExportPolicyWords() {
            EXPORT_POLICY.words().forEach(this::add);
        }
    }

    public static final class ImportMethodWords extends ArrayList<String> {
        public ImportMethodWords() {
            IMPORT_METHOD.words().forEach(this::add);
        }
    }

    public static final class PurposeWords extends ArrayList<String> {
        public PurposeWords() {
            PURPOSE.words().forEach(this::add);
        }
    }

    public static final class AlgorithmWords extends ArrayList<String> {
        public AlgorithmWords() {
            ALGORITHM.words().forEach(this::add);
        }
    }

    public static final class ProtectionWords extends ArrayList<String> {
        public ProtectionWords() {
            PROTECTION.words().forEach(this::add);
        }
    }

    public static final class StateWords extends ArrayList<String> {
        public StateWords() {
            STATE.words().forEach(this::add);
        }
    }
}

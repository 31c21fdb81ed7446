package io.tpmkms.key.crypto;

import io.tpmkms.key.error.KeyErrors;
import io.tpmkms.key.backend.BackendRegistry;
import io.tpmkms.key.crypto.KeyCache.CachedKey;
import io.tpmkms.key.crypto.KeyCache.CachedVersion;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.lifecycle.KeyNames;
import io.tpmkms.key.lifecycle.KeyNames.KeyName;
import io.tpmkms.key.lifecycle.KeyPurpose;
import io.tpmkms.key.lifecycle.KeyUse;
import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.ExportPolicy;
import io.tpmkms.protection.tpm.Duplication;
import io.tpmkms.protection.tpm.DuplicationTargets;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.SignatureVerifier;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.MessageDigest;
import java.util.Map;

/**
 * Cryptographic use of keys: picks the version (the primary to protect new
 * data, the one the input names to read old data), checks purpose and state,
 * and hands the work to the version's backend. Verification runs in-process
 * against the stored public key and never touches the backend.
 *
 * <p>Thread-safe; stateless apart from the {@link KeyCache}.
 */
@ApplicationScoped
public class CryptoService {
  public static final int MAX_PLAINTEXT = 64 * 1024;
  public static final int MAX_AAD = 64 * 1024;
  public static final int MAX_DATA = 64 * 1024;
  public static final int MAX_CIPHERTEXT = 2 * MAX_PLAINTEXT;
  public static final int MAX_RANDOM = 1024;
  public static final int MAX_NONCE = 32;

  private final KeyCache cache;
  private final BackendRegistry backends;
  private final java.util.Set<String> trustedAttestationKeys;

  public CryptoService(KeyCache cache, BackendRegistry backends, io.tpmkms.key.KmsConfig config) {
    this.cache = cache;
    this.backends = backends;
    java.util.Set<String> trusted = new java.util.HashSet<>();
    for (String n : config.duplication().trustedAttestationKeys().orElse(java.util.List.of())) {
      if (!n.isBlank()) trusted.add(n.strip().toLowerCase(java.util.Locale.ROOT));
    }
    this.trustedAttestationKeys = java.util.Set.copyOf(trusted);
  }

  /**
   * Where an export goes: for TPM keys the proof that a storage key lives in a TPM (see
   * DuplicationTargets); for SOFTWARE keys an RSA wrapping key (PEM) and method instead.
   */
  public record TargetProof(byte[] publicArea, byte[] attest, byte[] signature, byte[] attestationKeyPublic,
      byte[] qualifyingData, String wrappingPublicKeyPem, io.tpmkms.protection.ImportWrapping.Method method) {
    public TargetProof(byte[] publicArea, byte[] attest, byte[] signature, byte[] attestationKeyPublic,
        byte[] qualifyingData) {
      this(publicArea, attest, signature, attestationKeyPublic, qualifyingData, null, null);
    }
  }

  /** What ExportKeyVersion returns: a duplication (TPM) or a wrapped key (SOFTWARE). */
  public record Exported(Duplication duplication, int version, byte[] targetName, java.util.List<byte[]> policyBranches,
      byte[] wrappedKey) {
    public Exported(Duplication duplication, int version, byte[] targetName, java.util.List<byte[]> policyBranches) {
      this(duplication, version, targetName, policyBranches, null);
    }
  }

  /**
   * SOFTWARE export: the material wrapped for the caller's RSA key in the import-job format. There
   * is no hardware to attest the target; the duplicator role is the control, and the call is audited.
   */
  private Exported exportWrapped(KeyName kn, CachedVersion v, io.tpmkms.protection.software.SoftwareKeyProtectionBackend soft,
      TargetProof target) {
    if (target.wrappingPublicKeyPem() == null || target.wrappingPublicKeyPem().isBlank()) {
      throw ServiceException.invalid(KeyReason.DUPLICATION_TARGET_INVALID, "a SOFTWARE key leaves wrapped for an RSA"
          + " key: give wrapping_public_key_pem (e.g. the public_key_pem of the importing side's import job)");
    }
    java.security.PublicKey rsa;
    try {
      String body = target.wrappingPublicKeyPem().replaceAll("-----(BEGIN|END) PUBLIC KEY-----", "")
          .replaceAll("\\s", "");
      rsa = java.security.KeyFactory.getInstance("RSA").generatePublic(
          new java.security.spec.X509EncodedKeySpec(java.util.Base64.getDecoder().decode(body)));
    } catch (java.security.GeneralSecurityException | IllegalArgumentException e) {
      throw ServiceException.invalid(KeyReason.DUPLICATION_TARGET_INVALID,
          "wrapping_public_key_pem is not an RSA public key in PEM (\"-----BEGIN PUBLIC KEY-----\")");
    }
    var method = target.method() == null ? io.tpmkms.protection.ImportWrapping.Method.RSA_OAEP_3072_SHA256_AES_256
        : target.method();
    if (method.duplication()) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "SOFTWARE keys leave wrapped with an RSA method");
    }
    try {
      return new Exported(null, v.number(), new byte[0], java.util.List.of(), soft.exportWrapped(v.handle(), method, rsa));
    } catch (BackendException e) {
      if (e.kind() != BackendException.Kind.INVALID_INPUT) throw e;
      throw new ServiceException(io.tpmkms.platform.error.ErrorCode.INVALID_ARGUMENT,
          KeyReason.DUPLICATION_TARGET_INVALID, e.getMessage(), Map.of(), e);
    }
  }

  /**
   * Duplicates an ENABLED version (0: the primary) of a DUPLICABLE TPM key to a storage key that a
   * trusted attestation key certified (ADR 0025). Checks, in order: the version's state, its
   * protection level and export policy, the target's proof; then the TPM duplicates.
   *
   * @throws ServiceException FAILED_PRECONDITION (KEY_NOT_EXPORTABLE, KEY_VERSION_*), INVALID_ARGUMENT
   *     (DUPLICATION_TARGET_INVALID, INVALID_REQUEST)
   */
  public Exported export(String key, int version, TargetProof target, byte[] transferAuth) {
    if (transferAuth != null && transferAuth.length > 32) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "transfer_auth must be at most 32 bytes");
    }
    KeyName kn = KeyNames.parse(key);
    CachedKey k = cache.get(kn);
    CachedVersion v = usable(k, version == 0 ? k.primaryVersion() : version, KeyUse.EXPORT);
    KeyProtectionBackend b = backends.forLevel(v.level());
    if (b.exportPolicy(v.handle()) != ExportPolicy.DUPLICABLE) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_NOT_EXPORTABLE, "version " + v.number() + " of key \""
          + kn.full() + "\" is NON_EXPORTABLE" + (v.level() == ProtectionLevel.TPM ? " (fixedTPM: the TPM refuses to"
          + " duplicate it)" : ""))
          .with("key", kn.full()).with("version", Integer.toString(v.number()));
    }
    if (b instanceof io.tpmkms.protection.software.SoftwareKeyProtectionBackend soft) {
      if (target.publicArea() != null && target.publicArea().length > 0) {
        throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "a SOFTWARE key leaves wrapped for an RSA key:"
            + " give wrapping_public_key_pem, not a TPM target");
      }
      return exportWrapped(kn, v, soft, target);
    }
    if (!(b instanceof TpmKeyProtectionBackend tpm)) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_NOT_EXPORTABLE, "keys of protection level " + v.level()
          + " cannot be exported").with("key", kn.full());
    }
    if (target.wrappingPublicKeyPem() != null || target.method() != null) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "a TPM key leaves only as a duplication blob to a"
          + " certified TPM storage key: give target, not wrapping_public_key_pem or import_method");
    }
    if (!MessageDigest.isEqual(tpm.duplicationAuthorityName(), tpm.duplicationAuthorityOf(v.handle()))) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_NOT_EXPORTABLE, "version " + v.number() + " of key \""
          + kn.full() + "\" came from another deployment by duplication: only that deployment's duplication authority"
          + " can approve its further duplication").with("key", kn.full()).with("version", Integer.toString(v.number()));
    }
    if (trustedAttestationKeys.isEmpty()) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_NOT_EXPORTABLE, "no attestation key is trusted for"
          + " duplication targets (set tpmkms.duplication.trusted-attestation-keys); nothing can be exported");
    }
    DuplicationTargets.Target t;
    try {
      t = DuplicationTargets.verify(target.publicArea(), target.attest(), target.signature(),
          target.attestationKeyPublic(), trustedAttestationKeys, target.qualifyingData());
    } catch (BackendException e) {
      if (e.kind() != BackendException.Kind.INVALID_INPUT) throw e;
      throw new ServiceException(io.tpmkms.platform.error.ErrorCode.INVALID_ARGUMENT,
          KeyReason.DUPLICATION_TARGET_INVALID, e.getMessage(), Map.of(), e);
    }
    Duplication d = tpm.duplicate(v.handle(), t.tpmtPublic(), transferAuth);
    return new Exported(d, v.number(), t.name(), tpm.policyBranches(v.handle()));
  }



  /** A result and the version that produced it. */
  public record Result(byte[] bytes, int version) {}

  /** A statement about a version, and the platform binding its certified policy asserts (null: none). */
  public record Attestation(KeyAttestation statement, int version, io.tpmkms.protection.PlatformBinding platformBinding) {}

  /** Result of a verification; invalid is an answer, not an error. */
  public record Verdict(boolean valid, int version) {}

  /**
   * Whether a call on this key can run on the event loop: its cached view is
   * fresh and its material is in-process (SOFTWARE), so nothing would block.
   */
  public boolean servesInline(String key) {
    return cachedLevel(key) == ProtectionLevel.SOFTWARE;
  }

  /** The protection level of a key whose cached view is fresh, else null; never blocks. */
  public ProtectionLevel cachedLevel(String key) {
    try {
      CachedKey k = cache.peek(KeyNames.parse(key));
      return k != null && k.primary() != null ? k.primary().level() : null;
    } catch (RuntimeException e) {
      return null; // let the worker path report it
    }
  }

  public Result encrypt(String key, byte[] plaintext, byte[] aad) {
    limit(plaintext, MAX_PLAINTEXT, KeyReason.PLAINTEXT_TOO_LARGE, "plaintext");
    limit(aad, MAX_AAD, KeyReason.AAD_TOO_LARGE, "additional authenticated data");
    KeyName kn = KeyNames.parse(key);
    CachedKey k = purpose(kn, KeyPurpose.ENCRYPT_DECRYPT);
    CachedVersion v = usable(k, k.primaryVersion(), KeyUse.ENCRYPT);
    byte[] payload = backend(v, Capability.ENCRYPT).encrypt(v.handle(), plaintext, aad);
    return new Result(new Ciphertext(v.number(), payload).encode(), v.number());
  }

  public Result decrypt(String key, byte[] ciphertext, byte[] aad) {
    limit(ciphertext, MAX_CIPHERTEXT, KeyReason.CIPHERTEXT_INVALID, "ciphertext");
    limit(aad, MAX_AAD, KeyReason.AAD_TOO_LARGE, "additional authenticated data");
    KeyName kn = KeyNames.parse(key);
    Ciphertext ct = Ciphertext.decode(ciphertext);
    CachedKey k = purpose(kn, KeyPurpose.ENCRYPT_DECRYPT);
    if (!k.versions().containsKey(ct.version())) {
      k = cache.reload(kn); // a version created on another replica since this one cached the key
      if (!k.versions().containsKey(ct.version())) {
        throw ServiceException.invalid(KeyReason.CIPHERTEXT_INVALID, "ciphertext names a version this key does not have");
      }
    }
    CachedVersion v = usable(k, ct.version(), KeyUse.DECRYPT);
    try {
      return new Result(backend(v, Capability.ENCRYPT).decrypt(v.handle(), ct.payload(), aad), v.number());
    } catch (BackendException e) {
      throw e.kind() == BackendException.Kind.INVALID_INPUT ? decryptionFailed(e) : e;
    }
  }

  /** A fresh data key from the key's backend, in clear (unless omitted) and encrypted under the key. */
  public Result[] generateDataKey(String key, int lengthBytes, byte[] aad) {
    int len = lengthBytes == 0 ? 32 : lengthBytes;
    if (len != 16 && len != 32) {
      throw ServiceException.invalid(KeyReason.INVALID_LENGTH, "data key length must be 16 or 32 bytes");
    }
    KeyName kn = KeyNames.parse(key);
    CachedKey k = purpose(kn, KeyPurpose.ENCRYPT_DECRYPT);
    CachedVersion v = usable(k, k.primaryVersion(), KeyUse.ENCRYPT);
    limit(aad, MAX_AAD, KeyReason.AAD_TOO_LARGE, "additional authenticated data");
    byte[] dataKey = backend(v, Capability.RANDOM).randomBytes(len);
    byte[] payload = backend(v, Capability.ENCRYPT).encrypt(v.handle(), dataKey, aad);
    return new Result[] {
      new Result(dataKey, v.number()), new Result(new Ciphertext(v.number(), payload).encode(), v.number())};
  }

  /** Signs data (hashed here) or a precomputed digest. version 0 means the primary. */
  public Result sign(String key, int version, byte[] data, byte[] digest) {
    KeyName kn = KeyNames.parse(key);
    CachedKey k = purpose(kn, KeyPurpose.ASYMMETRIC_SIGN);
    CachedVersion v = usable(k, version == 0 ? k.primaryVersion() : version, KeyUse.SIGN);
    byte[] d = digestOf(v.algorithm(), data, digest);
    return new Result(backend(v, Capability.SIGN).sign(v.handle(), d), v.number());
  }

  public Verdict verify(String key, int version, byte[] data, byte[] digest, byte[] signature) {
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(version);
    limit(signature, MAX_DATA, KeyReason.DATA_TOO_LARGE, "signature");
    CachedKey k = purpose(kn, KeyPurpose.ASYMMETRIC_SIGN);
    CachedVersion v = usable(k, version, KeyUse.VERIFY);
    byte[] d = digestOf(v.algorithm(), data, digest);
    return new Verdict(SignatureVerifier.verifyDigest(v.algorithm(), v.publicKey(), d, signature), v.number());
  }

  public Result asymmetricDecrypt(String key, int version, byte[] ciphertext) {
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(version);
    limit(ciphertext, MAX_DATA, KeyReason.CIPHERTEXT_INVALID, "ciphertext");
    CachedKey k = purpose(kn, KeyPurpose.ASYMMETRIC_DECRYPT);
    CachedVersion v = usable(k, version, KeyUse.ASYMMETRIC_DECRYPT);
    try {
      return new Result(backend(v, Capability.ASYMMETRIC_DECRYPT).asymmetricDecrypt(v.handle(), ciphertext),
          v.number());
    } catch (BackendException e) {
      throw e.kind() == BackendException.Kind.INVALID_INPUT ? decryptionFailed(e) : e;
    }
  }

  /** DER SubjectPublicKeyInfo of an asymmetric version (0: the primary) and its algorithm. */
  public CachedVersion publicKey(String key, int version) {
    KeyName kn = KeyNames.parse(key);
    CachedKey k = cache.get(kn);
    if (k.purpose() != KeyPurpose.ASYMMETRIC_SIGN && k.purpose() != KeyPurpose.ASYMMETRIC_DECRYPT) {
      throw wrongPurpose(kn, k.purpose(), "an asymmetric purpose");
    }
    return usable(k, version == 0 ? k.primaryVersion() : version, KeyUse.PUBLIC_KEY);
  }

  public Result macSign(String key, byte[] data) {
    limit(data, MAX_DATA, KeyReason.DATA_TOO_LARGE, "data");
    KeyName kn = KeyNames.parse(key);
    CachedKey k = purpose(kn, KeyPurpose.MAC);
    CachedVersion v = usable(k, k.primaryVersion(), KeyUse.MAC_SIGN);
    return new Result(backend(v, Capability.MAC).mac(v.handle(), data), v.number());
  }

  public Verdict macVerify(String key, int version, byte[] data, byte[] mac) {
    limit(data, MAX_DATA, KeyReason.DATA_TOO_LARGE, "data");
    limit(mac, MAX_DATA, KeyReason.DATA_TOO_LARGE, "mac");
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(version);
    CachedKey k = purpose(kn, KeyPurpose.MAC);
    CachedVersion v = usable(k, version, KeyUse.MAC_VERIFY);
    byte[] expected = backend(v, Capability.MAC).mac(v.handle(), data);
    return new Verdict(MessageDigest.isEqual(expected, mac), v.number());
  }

  /**
   * TPM2_ActivateCredential of a credential made for this TPM's EK (RSA-2048 or ECC P-256, the TCG
   * templates) and the attestation key {@link #attest} signs with (ADR 0037). The AK serves nothing
   * else: node agents use their own AK template, so this cannot unwrap a credential meant for them.
   *
   * @throws ServiceException INVALID_ARGUMENT CREDENTIAL_INVALID when the file is malformed or the TPM
   *     refuses it (made for another EK or AK name, altered); UNIMPLEMENTED without a TPM
   */
  public byte[] activateAttestationCredential(boolean ecc, byte[] file) {
    if (file.length == 0 || file.length > 1024) {
      throw ServiceException.invalid(KeyReason.CREDENTIAL_INVALID, "credential must be 1 to 1024 bytes (tpm2-tools' "
          + "makecredential file)");
    }
    var credential = parseCredential(file);
    KeyProtectionBackend b = backends.forLevel(ProtectionLevel.TPM);
    if (!(b instanceof io.tpmkms.protection.tpm.TpmKeyProtectionBackend tpm)) {
      throw new ServiceException(io.tpmkms.platform.error.ErrorCode.UNIMPLEMENTED, KeyReason.CAPABILITY_UNAVAILABLE,
          "this key service has no TPM", Map.of(), null);
    }
    try {
      return new io.tpmkms.protection.tpm.attest.TpmAttestation(tpm.connection()).activateCredential(
          ecc ? io.tpmkms.protection.tpm.attest.TpmAttestation.EkType.ECC_P256
              : io.tpmkms.protection.tpm.attest.TpmAttestation.EkType.RSA_2048, credential);
    } catch (io.tpmkms.protection.tpm.attest.CredentialActivation.ActivationException e) {
      throw ServiceException.invalid(KeyReason.CREDENTIAL_INVALID, "the TPM refused the credential: it was not made "
          + "for this TPM's " + (ecc ? "ECC" : "RSA") + " EK and its attestation key (" + e.refusal() + ")");
    }
  }

  private static io.tpmkms.protection.tpm.attest.CredentialActivation.Credential parseCredential(byte[] file) {
    try {
      return io.tpmkms.protection.tpm.attest.CredentialActivation.Credential.fromTpm2ToolsFile(file);
    } catch (RuntimeException e) {
      throw ServiceException.invalid(KeyReason.CREDENTIAL_INVALID, "credential is not a tpm2-tools makecredential file: "
          + e.getMessage());
    }
  }

  /**
   * A fresh TPM2_Certify statement about a version (0: the primary) with the
   * caller's nonce. Versions whose material exists can be attested, whatever
   * their state, except DESTROYED and PENDING_IMPORT.
   */
  public Attestation attest(String key, int version, byte[] nonce) {
    if (nonce != null && nonce.length > MAX_NONCE) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "nonce must be at most " + MAX_NONCE + " bytes");
    }
    KeyName kn = KeyNames.parse(key);
    CachedKey k = cache.get(kn);
    CachedVersion v = k.versions().get(version == 0 ? k.primaryVersion() : version);
    if (v == null) v = usable(k, version, KeyUse.PUBLIC_KEY); // reloads once, then NOT_FOUND
    if (v.handle() == null) {
      KeyUse.PUBLIC_KEY.check(kn.full(), v.number(), v.state()); // DESTROYED / PENDING_IMPORT
    }
    KeyProtectionBackend b = backends.forLevel(v.level());
    if (!b.describe().supports(Capability.CERTIFY)) {
      throw new ServiceException(io.tpmkms.platform.error.ErrorCode.UNIMPLEMENTED, KeyReason.CAPABILITY_UNAVAILABLE,
          "keys with protection level " + v.level() + " cannot be attested; only TPM keys can");
    }
    return new Attestation(b.certify(v.handle(), nonce == null ? new byte[0] : nonce), v.number(),
        b.platformBinding(v.handle()).orElse(null));
  }

  public byte[] generateRandom(int length, ProtectionLevel level) {
    if (length < 1 || length > MAX_RANDOM) {
      throw ServiceException.invalid(KeyReason.INVALID_LENGTH, "length_bytes must be between 1 and " + MAX_RANDOM);
    }
    KeyProtectionBackend b = backends.forLevel(backends.resolve(level));
    if (!b.describe().supports(Capability.RANDOM)) {
      throw new BackendException(BackendException.Kind.UNSUPPORTED, "the backend has no random generator");
    }
    return b.randomBytes(length);
  }

  // ---------------------------------------------------------------------------------------------

  private CachedKey purpose(KeyName kn, KeyPurpose expected) {
    CachedKey k = cache.get(kn);
    if (k.purpose() != expected) throw wrongPurpose(kn, k.purpose(), expected.name());
    return k;
  }

  private CachedVersion usable(CachedKey k, int number, KeyUse use) {
    if (number == 0) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_HAS_NO_PRIMARY,
          "key \"" + k.name() + "\" has no primary version yet (import one with ImportKeyVersion)")
          .with("key", k.name());
    }
    CachedVersion v = k.versions().get(number);
    if (v == null) {
      // perhaps created on another replica since this one cached the key
      v = cache.reload(KeyNames.parse(k.name())).versions().get(number);
      if (v == null) throw KeyErrors.versionNotFound(k.name(), number);
    }
    use.check(k.name(), number, v.state());
    return v;
  }

  private KeyProtectionBackend backend(CachedVersion v, Capability capability) {
    return backends.require(v.level(), v.algorithm(), capability);
  }

  private static byte[] digestOf(KeyAlgorithm alg, byte[] data, byte[] digest) {
    if (digest != null) {
      if (digest.length != alg.digestLength()) {
        throw ServiceException.invalid(KeyReason.INVALID_DIGEST,
            "digest must be " + alg.digestLength() + " bytes (" + alg.digestName() + ") for " + alg);
      }
      return digest;
    }
    if (data == null) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "either data or digest is required");
    }
    limit(data, MAX_DATA, KeyReason.DATA_TOO_LARGE, "data");
    return alg.digest(data);
  }

  private static void limit(byte[] b, int max, KeyReason reason, String what) {
    if (b != null && b.length > max) {
      throw ServiceException.invalid(reason, what + " is larger than " + max + " bytes");
    }
  }

  private static ServiceException wrongPurpose(KeyName kn, KeyPurpose actual, String expected) {
    return ServiceException.failedPrecondition(KeyReason.WRONG_KEY_PURPOSE,
        "key \"" + kn + "\" has purpose " + actual + "; this operation needs " + expected)
        .with("key", kn.full());
  }

  private static ServiceException decryptionFailed(BackendException e) {
    return new ServiceException(io.tpmkms.platform.error.ErrorCode.INVALID_ARGUMENT, KeyReason.DECRYPTION_FAILED,
        "decryption failed", Map.of(), e);
  }
}

package io.tpmkms.protection.tpm;

import io.tpmkms.protection.BackendDescription;
import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.ExportPolicy;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.RsaPadding;
import io.tpmkms.protection.tpm.internal.DuplicationAuthority;
import io.tpmkms.protection.tpm.internal.KeyPolicy;
import io.tpmkms.protection.tpm.internal.PcrPolicy;
import io.tpmkms.protection.PlatformBinding;
import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.PolicyDigests;
import io.tpmkms.protection.tpm.internal.PolicySession;
import io.tpmkms.protection.tpm.internal.ResponseCodes;
import io.tpmkms.protection.tpm.internal.SessionCrypto;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import io.tpmkms.protection.tpm.internal.TpmPublicKeys;
import io.tpmkms.protection.tpm.internal.TpmRcException;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.Set;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.jboss.logging.Logger;
import tss.tpm.GetCapabilityResponse;
import tss.tpm.NV_ReadPublicResponse;
import tss.tpm.TPML_ALG_PROPERTY;
import tss.tpm.TPML_ECC_CURVE;
import tss.tpm.TPMS_ALG_PROPERTY;
import tss.tpm.TPMS_NULL_ASYM_SCHEME;
import tss.tpm.TPMS_NULL_SIG_SCHEME;
import tss.tpm.TPMS_SIGNATURE_ECC;
import tss.tpm.TPMS_SIGNATURE_RSA;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPMS_ECC_POINT;
import tss.tpm.TPM2B_PUBLIC_KEY_RSA;
import tss.tpm.TPMT_TK_HASHCHECK;
import tss.tpm.TPMU_SIGNATURE;
import tss.tpm.TPM_ALG_ID;
import tss.tpm.TPM_CAP;
import tss.tpm.TPM_ECC_CURVE;
import tss.tpm.TPM_HANDLE;
import tss.tpm.TPM_RH;

/**
 * The TPM key-protection backend: every key version is a child object of the
 * storage root key (SRK) created, held and used inside the TPM; its private
 * part leaves the TPM only encrypted under the SRK (TPM2B_PRIVATE), inside the
 * blob the caller stores (format v1, {@link TpmBlob}, ADR 0008).
 *
 * <ul>
 *   <li>SRK: ECC P-256 storage primary in the owner hierarchy from the fixed
 *       template ({@code tpm2_createprimary -C o -G ecc256:null:aes128cfb}), re-derived
 *       at each connect, never stored (or at a persistent handle, {@link TpmConfig}).
 *   <li>Each object's auth value = HMAC-SHA256(authSecret, "tpmkms/tpm/auth/v1" || objectId), with
 *       the 16-byte random objectId in the blob and authSecret given to the constructor: the
 *       database plus TPM access is not enough to use a key. At use only the HMAC key of the
 *       connection's HMAC session (or, for DUPLICABLE keys, its policy session): never sent in clear
 *       at use (docs/threat-model.md).
 *   <li>The TPM is a key cache: blobs are loaded on use and kept in an LRU of
 *       {@link TpmConfig#maxLoadedObjects()} objects; cold ones are flushed and reloaded from the
 *       blob when used again (no ContextSave: a Load from the blob is as fast on swtpm and needs
 *       no saved-context bookkeeping across TPM restarts).
 *   <li>Imported keys ({@link #importKey}): AES/HMAC by TPM2_Create with the caller's data
 *       (fixedTPM kept), EC/RSA by TPM2_Import without wrappers (fixedTPM/fixedParent CLEAR, an
 *       authPolicy no session can satisfy, so never duplicable); blob format v2 with the
 *       imported flag; sensitiveDataOrigin CLEAR tells the attestation verifier.
 *   <li>AEAD (ADR 0009): the key is an HMAC object; per message DEK = TPM2_HMAC(key,
 *       "tpmkms/tpm/aead/v1" || salt16), then AES-256-GCM in software; payload
 *       salt(16) | nonce(12) | ciphertext | tag(16).
 * </ul>
 *
 * <p>Threading: safe for concurrent use; all TPM commands go through the
 * {@link TpmConnection}'s single lock. Software parts (AES-GCM, DER encoding)
 * run outside it.
 *
 * <p>Errors: only {@link BackendException}. KEY_INVALID for a blob that is
 * malformed, made under another SRK (another TPM or owner seed: refused before
 * any TPM command), refused by TPM2_Load, or whose auth value the TPM refuses;
 * INVALID_INPUT for bad input, a wrong key purpose, and failed decryption
 * ("decryption failed"); UNAVAILABLE when the TPM cannot be reached (the next
 * call reconnects) or after {@link #close}; RESOURCE_EXHAUSTED when the TPM is
 * out of memory or in dictionary-attack lockout; INTERNAL otherwise, with the
 * response code in the message.
 */
public final class TpmKeyProtectionBackend implements KeyProtectionBackend {
  public static final String ID = "tpm";

  private static final Logger LOG = Logger.getLogger(TpmKeyProtectionBackend.class);
  private static final byte[] AUTH_LABEL = "tpmkms/tpm/auth/v1".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] AEAD_LABEL = "tpmkms/tpm/aead/v1".getBytes(StandardCharsets.US_ASCII);
  static final int AEAD_SALT = 16;
  static final int AEAD_NONCE = 12;
  static final int AEAD_TAG = 16;
  /** MAX_DIGEST_BUFFER of the TPM reference implementation: larger HMAC input goes through a sequence. */
  private static final int HMAC_CHUNK = 1024;
  private static final int MAX_QUALIFYING_DATA = 64;
  private static final int EK_CERT_ECC_NV = 0x01C0000A;
  private static final int EK_CERT_RSA_NV = 0x01C00002;
  private static final int NV_CHUNK = 512;

  private static final ThreadLocal<SecureRandom> RANDOM = ThreadLocal.withInitial(SecureRandom::new);

  private final TpmConnection connection;
  private final boolean ownsConnection;
  private final SecretKeySpec authKey;
  private final DuplicationAuthority authority;
  private final BackendDescription description;
  private volatile boolean closed;

  /**
   * A backend on its own connection, closed with the backend.
   *
   * @param authSecret the secret the objects' auth values are derived from, at least 16 bytes
   *     (key-service passes the TPM-sealed software root seed); copied
   * @throws BackendException UNAVAILABLE if the TPM cannot be reached
   */
  public static TpmKeyProtectionBackend open(TpmConfig config, byte[] authSecret) {
    TpmConnection c = TpmConnection.open(config);
    try {
      return new TpmKeyProtectionBackend(c, authSecret, true);
    } catch (RuntimeException e) {
      c.close();
      throw e;
    }
  }

  /**
   * A backend on a shared connection (e.g. the one a {@link TpmSealedRootKeySource} uses);
   * {@link #close} leaves the connection open.
   */
  public TpmKeyProtectionBackend(TpmConnection connection, byte[] authSecret) {
    this(connection, authSecret, false);
  }

  private TpmKeyProtectionBackend(TpmConnection connection, byte[] authSecret, boolean owns) {
    if (connection == null) throw new IllegalArgumentException("TPM connection is required");
    if (authSecret == null || authSecret.length < 16) {
      throw new IllegalArgumentException("auth secret must be at least 16 bytes");
    }
    this.connection = connection;
    this.ownsConnection = owns;
    this.authKey = new SecretKeySpec(authSecret.clone(), "HmacSHA256");
    this.authority = new DuplicationAuthority(authSecret);
    this.description = connection.execute(TpmKeyProtectionBackend::probe);
    LOG.infof("TPM key-protection backend ready: SRK %s, algorithms %s",
        HexFormat.of().formatHex(connection.srkName()), description.algorithms());
  }

  @Override
  public BackendDescription describe() { return description; }

  /** The connection this backend uses (for tests and for sharing with the sealed root source). */
  public TpmConnection connection() { return connection; }

  /** Closes the TPM connection until the next call (lets tpm2-tools use swtpm meanwhile). */
  public void releaseConnection() { connection.releaseConnection(); }

  // --- capabilities ---------------------------------------------------------------------

  private static BackendDescription probe(TpmSession s) {
    Set<Integer> algs = new java.util.HashSet<>();
    GetCapabilityResponse r = s.run("GetCapability", () -> s.tpm().GetCapability(TPM_CAP.ALGS, 0, 128));
    if (r.capabilityData instanceof TPML_ALG_PROPERTY list) {
      for (TPMS_ALG_PROPERTY p : list.algProperties) algs.add(p.alg.toInt());
    }
    Set<Integer> curves = new java.util.HashSet<>();
    GetCapabilityResponse c = s.run("GetCapability", () -> s.tpm().GetCapability(TPM_CAP.ECC_CURVES, 0, 64));
    if (c.capabilityData instanceof TPML_ECC_CURVE list) {
      for (TPM_ECC_CURVE curve : list.eccCurves) curves.add(curve.toInt());
    }
    EnumSet<KeyAlgorithm> supported = EnumSet.noneOf(KeyAlgorithm.class);
    for (KeyAlgorithm alg : KeyAlgorithm.values()) {
      if (!algsPresent(alg, algs, curves)) continue;
      TPMT_PUBLIC t = Templates.key(alg);
      try {
        s.run("TestParms", () -> s.tpm().TestParms(t.parameters));
        supported.add(alg);
      } catch (TpmRcException e) {
        LOG.infof("TPM lacks %s: %s", alg, e.getMessage());
      }
    }
    return new BackendDescription(ID, ProtectionLevel.TPM,
        EnumSet.of(Capability.GENERATE, Capability.IMPORT, Capability.SIGN, Capability.ENCRYPT,
            Capability.ASYMMETRIC_DECRYPT, Capability.MAC, Capability.RANDOM, Capability.CERTIFY),
        supported);
  }

  private static boolean algsPresent(KeyAlgorithm alg, Set<Integer> algs, Set<Integer> curves) {
    int sha256 = TPM_ALG_ID.SHA256.toInt();
    if (!algs.contains(sha256)) return false;
    return switch (alg) {
      case EC_SIGN_P256_SHA256 -> algs.contains(TPM_ALG_ID.ECC.toInt()) && algs.contains(TPM_ALG_ID.ECDSA.toInt())
          && curves.contains(TPM_ECC_CURVE.NIST_P256.toInt());
      case EC_SIGN_P384_SHA384 -> algs.contains(TPM_ALG_ID.ECC.toInt()) && algs.contains(TPM_ALG_ID.ECDSA.toInt())
          && algs.contains(TPM_ALG_ID.SHA384.toInt()) && curves.contains(TPM_ECC_CURVE.NIST_P384.toInt());
      case RSA_SIGN_PKCS1_2048_SHA256, RSA_SIGN_PKCS1_3072_SHA256, RSA_SIGN_PKCS1_4096_SHA256 ->
          algs.contains(TPM_ALG_ID.RSA.toInt()) && algs.contains(TPM_ALG_ID.RSASSA.toInt());
      case RSA_SIGN_PSS_2048_SHA256, RSA_SIGN_PSS_3072_SHA256, RSA_SIGN_PSS_4096_SHA256 ->
          algs.contains(TPM_ALG_ID.RSA.toInt()) && algs.contains(TPM_ALG_ID.RSAPSS.toInt());
      case RSA_DECRYPT_OAEP_2048_SHA256, RSA_DECRYPT_OAEP_3072_SHA256, RSA_DECRYPT_OAEP_4096_SHA256 ->
          algs.contains(TPM_ALG_ID.RSA.toInt()) && algs.contains(TPM_ALG_ID.OAEP.toInt());
      case HMAC_SHA256, AES_256_GCM -> algs.contains(TPM_ALG_ID.KEYEDHASH.toInt())
          && algs.contains(TPM_ALG_ID.HMAC.toInt());
    };
  }

  // --- generate -------------------------------------------------------------------------

  @Override
  public GeneratedKey generate(KeySpec spec) {
    ensureOpen();
    if (spec == null) throw new BackendException(Kind.INVALID_INPUT, "key spec is required");
    KeyAlgorithm alg = spec.algorithm();
    if (!description.supports(alg)) {
      throw new BackendException(Kind.UNSUPPORTED, "this TPM does not support " + alg);
    }
    byte[] objectId = new byte[TpmBlob.OBJECT_ID_LENGTH];
    RANDOM.get().nextBytes(objectId);
    byte[] auth = authValue(objectId);
    boolean duplicable = spec.exportPolicy() == ExportPolicy.DUPLICABLE;
    PlatformBinding requested = spec.platformBinding();
    TpmBlob blob = connection.execute(s -> {
      PlatformBinding binding = requested == null || requested.resolved() ? requested
          : requested.withValues(PcrPolicy.read(s, requested.pcrs()));
      TPMT_PUBLIC template = duplicable ? Templates.key(alg, KeyPolicy.duplicable(alg, authority.name()))
          : binding != null ? Templates.key(alg, KeyPolicy.platformBound(alg, binding))
          : Templates.key(alg);
      // in a session salted to the SRK: the new key's auth value crosses the bus encrypted (ADR 0028)
      byte[][] created = s.create(auth, new byte[0], template);
      byte[] tpmt = created[1];
      return duplicable
          ? new TpmBlob(TpmBlob.BACKEND_TPM, alg.code(), s.srkName(), objectId, sized(tpmt), created[0],
              TpmBlob.FLAG_DUPLICABLE, authority.name())
          : binding != null
          ? new TpmBlob(TpmBlob.BACKEND_TPM, alg.code(), s.srkName(), objectId, sized(tpmt), created[0],
              TpmBlob.FLAG_PLATFORM_BOUND, null, binding)
          : new TpmBlob(TpmBlob.BACKEND_TPM, alg.code(), s.srkName(), objectId, sized(tpmt), created[0]);
    });
    byte[] spki = alg.isAsymmetric() ? TpmPublicKeys.spki(alg, blob.publicArea()) : null;
    return new GeneratedKey(new KeyHandle(blob.encode()), spki);
  }

  // --- use ------------------------------------------------------------------------------

  /** A blob parsed and checked against the template of its algorithm. */
  private record Key(KeyHandle handle, TpmBlob blob, KeyAlgorithm alg, TPMT_PUBLIC pub, KeyPolicy policy,
      byte[] name) {}

  /**
   * Parsed blobs, so a hot key is not decoded and checked against its
   * template on every call (public data only: the TPM2B_PRIVATE stays
   * encrypted under the SRK). Bounded; cleared when full.
   */
  private final java.util.Map<KeyHandle, Key> parsed = new java.util.concurrent.ConcurrentHashMap<>();
  private static final int MAX_PARSED = 10_000;

  private Key parse(KeyHandle handle) {
    ensureOpen();
    if (handle == null) throw new BackendException(Kind.INVALID_INPUT, "key handle is required");
    Key cached = parsed.get(handle);
    if (cached != null) return cached;
    Key k = decode(handle);
    if (parsed.size() >= MAX_PARSED) parsed.clear();
    parsed.put(handle, k);
    return k;
  }

  private static Key decode(KeyHandle handle) {
    TpmBlob blob = TpmBlob.decode(handle.blob(), TpmBlob.BACKEND_TPM);
    KeyAlgorithm alg = blob.algorithm();
    TPMT_PUBLIC pub = blob.publicArea();
    KeyPolicy policy = blob.duplicable() ? KeyPolicy.duplicable(alg, blob.authorityName())
        : blob.platformBound() ? KeyPolicy.platformBound(alg, blob.binding()) : null;
    boolean ok;
    String what;
    if (blob.platformBound()) {
      // the binding in the blob must be the one the TPM enforces: the authPolicy in the object's name
      ok = !blob.duplicable() && !blob.imported() && !blob.duplicated() && Templates.matchesPlatformBound(alg, pub, policy);
      what = "platform-bound ";
    } else if (policy != null) {
      ok = Templates.matchesDuplicable(alg, pub, policy, blob.duplicated());
      what = "DUPLICABLE ";
    } else if (blob.duplicated()) {
      ok = Templates.matchesForeign(alg, pub);
      what = "duplicated ";
    } else {
      ok = Templates.matches(alg, pub, blob.imported());
      what = blob.imported() ? "imported " : "";
    }
    if (!ok) {
      throw new BackendException(Kind.KEY_INVALID, "key blob's TPM public area does not match the "
          + what + alg + " template (corrupt or tampered blob)");
    }
    return new Key(handle, blob, alg, pub, policy, Templates.name(blob.tpmtPublic()));
  }

  private Key parse(KeyHandle handle, KeyAlgorithm.Kind kind, String operation) {
    Key k = parse(handle);
    if (k.alg().kind() != kind) {
      throw new BackendException(Kind.INVALID_INPUT,
          "a " + k.alg() + " key cannot " + operation + " (key purpose " + k.alg().kind() + ")");
    }
    return k;
  }

  /** Checks the blob's SRK name against this TPM's, then returns the loaded object. */
  private TPM_HANDLE load(TpmSession s, Key k) {
    byte[] srkName = s.srkName();
    if (!Arrays.equals(srkName, k.blob().srkName())) {
      srkName = s.confirmSrkName(); // the cached name may predate a TPM restart or swap
    }
    if (!Arrays.equals(srkName, k.blob().srkName())) {
      throw new BackendException(Kind.KEY_INVALID,
          "key blob was created under another TPM or owner seed (SRK name "
              + HexFormat.of().formatHex(k.blob().srkName()) + ", this TPM's SRK is "
              + HexFormat.of().formatHex(srkName) + "); it cannot be used here");
    }
    return s.load(k.handle(), k.blob().tpmtPublic(), k.blob().tpm2bPrivate(), authValue(k.blob().objectId()));
  }

  // --- import ---------------------------------------------------------------------------

  /**
   * Makes a TPM object from caller material, under the SRK (docs/tpm-adapter.md, "Imported keys"):
   *
   * <ul>
   *   <li>AES_256_GCM, HMAC_SHA256: TPM2_Create with the 32 bytes as the sensitive data and the
   *       generated key's template with sensitiveDataOrigin CLEAR (fixedTPM, fixedParent stay SET).
   *   <li>EC, RSA: TPM2_Import with no outer and no inner wrapper (empty encryption key, symmetric
   *       algorithm NULL, empty seed): the duplicate is the TPM2B_SENSITIVE in clear. The public
   *       area has fixedTPM, fixedParent and sensitiveDataOrigin CLEAR and
   *       {@link Templates#NO_DUPLICATION_POLICY} as authPolicy, so it can never be duplicated.
   * </ul>
   *
   * Then TPM2_Load checks that the TPM takes the object. The blob is format v2 with the imported
   * flag. Both commands are marshalled here, so the buffers that carried the sensitive part are
   * zeroed afterwards; they cross the TPM bus in clear (no parameter encryption session).
   *
   * @throws BackendException UNSUPPORTED for an algorithm this TPM lacks (RSA-4096 on swtpm);
   *     INVALID_INPUT when the material is not of the spec's algorithm or the TPM refuses it
   */
  @Override
  public GeneratedKey importKey(KeySpec spec, KeyMaterial material) {
    ensureOpen();
    if (spec == null) throw new BackendException(Kind.INVALID_INPUT, "key spec is required");
    if (material == null) throw new BackendException(Kind.INVALID_INPUT, "key material is required");
    KeyAlgorithm alg = spec.algorithm();
    if (material.algorithm() != alg) {
      throw new BackendException(Kind.INVALID_INPUT,
          "key material was checked as " + material.algorithm() + " but the key is " + alg);
    }
    if (!description.supports(alg)) {
      throw new BackendException(Kind.UNSUPPORTED, "this TPM does not support " + alg);
    }
    if (spec.platformBinding() != null) {
      throw new BackendException(Kind.UNSUPPORTED, "imported keys cannot be platform-bound (yet): generate the key in the TPM");
    }
    byte[] objectId = new byte[TpmBlob.OBJECT_ID_LENGTH];
    RANDOM.get().nextBytes(objectId);
    byte[] auth = authValue(objectId);
    TPMT_PUBLIC template = Templates.key(alg, true);
    byte[][] secrets = new byte[3][];
    try {
      TpmBlob blob;
      if (alg.isAsymmetric()) {
        if (alg.isEc()) {
          byte[] x = material.ecPublicX();
          byte[] y = material.ecPublicY();
          template.unique = new TPMS_ECC_POINT(x, y);
          secrets[0] = material.ecPrivateScalar();
          secrets[1] = sensitive(TPM_ALG_ID.ECC.toInt(), auth, secrets[0]);
        } else {
          template.unique = new TPM2B_PUBLIC_KEY_RSA(
              org.bouncycastle.util.BigIntegers.asUnsignedByteArray(alg.keyBits() / 8, material.rsaModulus()));
          secrets[0] = material.rsaPrime();
          secrets[1] = sensitive(TPM_ALG_ID.RSA.toInt(), auth, secrets[0]);
        }
        byte[] tpmt = template.toBytes();
        byte[] sensitive = secrets[1];
        blob = connection.execute(s -> {
          byte[] r = importWithInnerWrapper(s, tpmt, sensitive);
          byte[] priv = tpm2b(ByteBuffer.wrap(r));
          return new TpmBlob(TpmBlob.BACKEND_TPM, alg.code(), s.srkName(), objectId, sized(tpmt), priv,
              TpmBlob.FLAG_IMPORTED);
        });
      } else {
        secrets[0] = material.rawKey();
        byte[] key = secrets[0];
        blob = connection.execute(s -> {
          // salted to the SRK: the imported key and its new auth value cross the bus encrypted (ADR 0028)
          byte[][] created = s.create(auth, key, template);
          return new TpmBlob(TpmBlob.BACKEND_TPM, alg.code(), s.srkName(), objectId, sized(created[1]), created[0],
              TpmBlob.FLAG_IMPORTED);
        });
      }
      KeyHandle handle = new KeyHandle(blob.encode());
      Key k = decode(handle);
      connection.execute(s -> {
        try {
          return load(s, k);
        } catch (TpmRcException e) {
          throw new TpmRcException("Import", e.rc()); // the TPM refuses what it imported: the material's fault
        }
      });
      byte[] spki = alg.isAsymmetric() ? TpmPublicKeys.spki(alg, k.pub()) : null;
      if (spki != null && !java.security.MessageDigest.isEqual(spki, material.publicKeyDer())) {
        destroy(handle);
        throw new BackendException(Kind.INTERNAL, "imported key's TPM public area does not hold the material's public key");
      }
      return new GeneratedKey(handle, spki);
    } finally {
      for (byte[] b : secrets) {
        if (b != null) Arrays.fill(b, (byte) 0);
      }
      Arrays.fill(auth, (byte) 0);
    }
  }

  /** Whether the handle's key was imported (blob format v2 with the imported flag; its public area agrees). */
  public boolean imported(KeyHandle handle) {
    return parse(handle).blob().imported();
  }

  private static final int TPM_ST_SESSIONS = 0x8002;
  private static final int TPM_CC_IMPORT = 0x156;
  private static final int TPM_RS_PW = 0x40000009;
  private static final int TPM_ALG_NULL = 0x0010;
  /** Offset of the parent handle in a command: tag(2) size(4) code(4). */
  private static final int PARENT_OFFSET = 10;

  /**
   * TPM2B_SENSITIVE with no wrapper, as TPM2_Import takes it in {@code duplicate}: uint16 size ||
   * TPMT_SENSITIVE {sensitiveType, authValue, seedValue (empty: not a parent), sensitive (TPM2B)}.
   */
  private static byte[] sensitive(int type, byte[] auth, byte[] secret) {
    int inner = 2 + 2 + auth.length + 2 + 2 + secret.length;
    ByteBuffer b = ByteBuffer.allocate(2 + inner);
    b.putShort((short) inner).putShort((short) type);
    b.putShort((short) auth.length).put(auth);
    b.putShort((short) 0);
    b.putShort((short) secret.length).put(secret);
    return b.array();
  }

  /**
   * TPM2_Import(SRK, encryptionKey, objectPublic, duplicate, inSymSeed empty, AES-128-CFB) with an
   * inner wrapper (TPM 2.0 Part 1, 23.3.2.3): duplicate = AES-128-CFB(encryptionKey, IV 0) of
   * TPM2B_DIGEST(SHA-256(sensitive || name)) || sensitive, and encryptionKey — a fresh random key —
   * sent as the first parameter, encrypted by a session salted to the SRK (ADR 0028). So the
   * private key crosses the bus only encrypted, and the TPM checks its integrity. Returns the
   * response parameters (outPrivate first).
   */
  private static byte[] importWithInnerWrapper(TpmSession s, byte[] tpmtPublic, byte[] tpm2bSensitive) {
    byte[] key = new byte[16];
    RANDOM.get().nextBytes(key);
    byte[] plain = null;
    byte[] params = null;
    try {
      byte[] integrity = PolicyDigests.hash(tpm2bSensitive, Templates.name(tpmtPublic));
      plain = new Marshal().tpm2b(integrity).bytes(tpm2bSensitive).toBytes();
      Cipher c = Cipher.getInstance("AES/CFB/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new IvParameterSpec(new byte[16]));
      byte[] duplicate = c.doFinal(plain);
      params = new Marshal().tpm2b(key).tpm2b(tpmtPublic).tpm2b(duplicate).tpm2b(new byte[0])
          .u16(SessionCrypto.ALG_AES).u16(SessionCrypto.AES_BITS).u16(SessionCrypto.ALG_CFB).toBytes();
      byte[] p = params;
      return s.saltedSession().command("Import", TPM_CC_IMPORT, new int[] {s.srk().handle},
          new byte[][] {s.srkName()}, p, new byte[0], 0, false, PolicySession.ENCRYPT_COMMAND);
    } catch (GeneralSecurityException e) {
      throw new BackendException(Kind.INTERNAL, "inner wrapper", e);
    } finally {
      Arrays.fill(key, (byte) 0);
      if (plain != null) Arrays.fill(plain, (byte) 0);
      if (params != null) Arrays.fill(params, (byte) 0);
    }
  }

  /** Header, a placeholder parent handle (set under the lock), an empty password session for the SRK. */
  private static ByteBuffer header(int size, int commandCode) {
    ByteBuffer b = ByteBuffer.allocate(size);
    b.putShort((short) TPM_ST_SESSIONS).putInt(size).putInt(commandCode);
    b.putInt(0); // parent handle
    b.putInt(9).putInt(TPM_RS_PW).putShort((short) 0).put((byte) 0).putShort((short) 0);
    return b;
  }

  private static void setParent(byte[] command, TpmSession s) {
    ByteBuffer.wrap(command).putInt(PARENT_OFFSET, s.srk().handle);
  }

  /** The first response parameter (a TPM2B), size included: after header(10) and parameterSize(4). */
  private static byte[] firstTpm2b(byte[] response) {
    return tpm2b(ByteBuffer.wrap(response, 14, response.length - 14));
  }

  private static byte[] tpm2b(ByteBuffer b) {
    int n = b.getShort(b.position()) & 0xffff;
    byte[] out = new byte[2 + n];
    b.get(out);
    return out;
  }

  @Override
  public byte[] publicKey(KeyHandle handle) {
    Key k = parse(handle);
    if (!k.alg().isAsymmetric()) {
      throw new BackendException(Kind.INVALID_INPUT, "a " + k.alg() + " key has no public key");
    }
    checkSrk(k);
    return TpmPublicKeys.spki(k.alg(), k.pub());
  }

  /** The key's TPMT_PUBLIC (what its TPM name is computed over), for attestation verification. */
  public byte[] tpmPublic(KeyHandle handle) {
    Key k = parse(handle);
    checkSrk(k);
    return k.blob().tpmtPublic();
  }

  private void checkSrk(Key k) {
    byte[] srkName = connection.srkName();
    if (!Arrays.equals(srkName, k.blob().srkName())) {
      throw new BackendException(Kind.KEY_INVALID,
          "key blob was created under another TPM or owner seed (SRK name mismatch); it cannot be used here");
    }
  }

  @Override
  public byte[] sign(KeyHandle handle, byte[] digest) {
    Key k = parse(handle, KeyAlgorithm.Kind.SIGN, "sign");
    RsaPadding.checkDigest(k.alg(), digest);
    return policySign(k, digest);
  }

  /**
   * TPM2_Sign authorized by the object's auth value in an HMAC: through the USER branch of a
   * DUPLICABLE key's policy (policy session), else in the connection's HMAC session.
   */
  private byte[] policySign(Key k, byte[] digest) {
    byte[] params = new Marshal().tpm2b(digest).u16(Marshal.ALG_NULL)
        .u16(TPM_ST_HASHCHECK).u32(Marshal.RH_NULL).u16(0).toBytes();
    byte[] r = connection.execute(s -> {
      TPM_HANDLE h = load(s, k);
      return userCommand(s, k, h, PolicyDigests.CC_SIGN, "Sign", params, 0, 0);
    });
    ByteBuffer b = ByteBuffer.wrap(r);
    int sigAlg = b.getShort() & 0xffff;
    b.getShort(); // hash
    if (sigAlg == TPM_ALG_ID.ECDSA.toInt()) {
      byte[] rr = Marshal.tpm2b(b);
      byte[] ss = Marshal.tpm2b(b);
      return TpmPublicKeys.derEcdsa(rr, ss);
    }
    byte[] out = Marshal.tpm2b(b);
    int n = k.alg().keyBits() / 8;
    if (out.length < n) {
      byte[] padded = new byte[n];
      System.arraycopy(out, 0, padded, n - out.length, out.length);
      out = padded;
    }
    return out;
  }

  /**
   * Runs a use command (USER role: Sign, HMAC, HMAC_Start, RSA_Decrypt) authorized by the object's
   * auth value as an HMAC key, never the auth value itself on the bus: a DUPLICABLE key through its
   * policy's auth-value branch for {@code cc} (policy session), any other key (userWithAuth SET) in
   * the connection's HMAC session, with no extra round trip. {@code encryption}: which first
   * parameters cross the bus encrypted under the auth value ({@link PolicySession#ENCRYPT_COMMAND},
   * {@link PolicySession#ENCRYPT_RESPONSE}).
   */
  private byte[] userCommand(TpmSession s, Key k, TPM_HANDLE h, int cc, String name, byte[] params,
      int responseHandles, int encryption) {
    byte[] auth = authValue(k.blob().objectId());
    try {
      if (k.policy() != null) {
        try {
          return s.policySession().authValueBranch(k.policy(), cc, name, new int[] {h.handle},
              new byte[][] {k.name()}, params, auth, responseHandles, false, encryption);
        } catch (TpmRcException e) {
          if (k.policy().assertsPcrs(cc) && "PolicyPCR".equals(e.command()) && e.base() == RC_VALUE) {
            throw platformStateMismatch(s, k.policy().binding(), e);
          }
          throw e;
        }
      }
      return s.hmacSession().command(name, cc, new int[] {h.handle}, new byte[][] {k.name()}, params, auth,
          responseHandles, false, encryption);
    } finally {
      Arrays.fill(auth, (byte) 0);
    }
  }

  private static final int TPM_ST_HASHCHECK = 0x8024;
  /** TPM_RC_VALUE: what TPM2_PolicyPCR answers when the PCRs' digest is not the policy's. */
  private static final int RC_VALUE = 0x084;

  /** The TPM refused the binding: says which PCRs differ now (read in the same connection). */
  private static BackendException platformStateMismatch(TpmSession s, PlatformBinding binding, TpmRcException cause) {
    String differing;
    try {
      differing = binding.differing(PcrPolicy.read(s, binding.pcrs()));
    } catch (RuntimeException e) {
      // not a platform change: the TPM cannot even read the PCRs (no SHA-256 bank allocated?)
      return new BackendException(Kind.KEY_INVALID, "the TPM refused PolicyPCR for the key's binding and its SHA-256 "
          + "PCRs cannot be read (" + e.getMessage() + ")", cause);
    }
    return new BackendException(Kind.PLATFORM_STATE_MISMATCH, "the TPM refuses the key: it is bound to SHA-256 PCRs "
        + binding.selectionText() + (differing.isEmpty() ? " and the platform state differs"
            : " and these differ from the bound values now: PCR " + differing), cause);
  }

  /** TPMT_TK_HASHCHECK {TPM_ST_HASHCHECK, TPM_RH_NULL, empty}: allowed because the key is unrestricted. */
  private static TPMT_TK_HASHCHECK nullTicket() { return TPMT_TK_HASHCHECK.nullTicket(); }

  @Override
  public byte[] mac(KeyHandle handle, byte[] data) {
    Key k = parse(handle, KeyAlgorithm.Kind.MAC, "compute a MAC");
    if (data == null) throw new BackendException(Kind.INVALID_INPUT, "data is required");
    return hmac(k, data);
  }

  private byte[] hmac(Key k, byte[] data) {
    return connection.execute(s -> {
      TPM_HANDLE h = load(s, k);
      if (data.length <= HMAC_CHUNK) {
        byte[] params = new Marshal().tpm2b(data).u16(Marshal.ALG_SHA256).toBytes();
        // the data (for Encrypt/Decrypt: the DEK's label and salt) and the HMAC (the DEK itself) cross the bus encrypted
        return Marshal.tpm2b(ByteBuffer.wrap(userCommand(s, k, h, PolicyDigests.CC_HMAC, "HMAC", params, 0,
            PolicySession.ENCRYPT_COMMAND | PolicySession.ENCRYPT_RESPONSE)));
      }
      s.ensureFreeSlots(1); // a sequence object takes a slot too; h stays (most recently used)
      byte[] startParams = new Marshal().tpm2b(new byte[0]).u16(Marshal.ALG_SHA256).toBytes();
      byte[] started = userCommand(s, k, h, PolicyDigests.CC_HMAC_START, "HMAC_Start", startParams, 1, 0);
      int seq = ByteBuffer.wrap(started).getInt();
      // the sequence has an empty auth value: a session salted to the SRK, kept for the whole
      // sequence, encrypts each chunk and the result (ADR 0028). A sequence object has no nameAlg, so
      // its name is empty (TPM 2.0 reference code, EntityGetName).
      PolicySession session = s.saltedSession().keepOpen(true);
      byte[][] seqName = {new byte[0]};
      boolean completed = false;
      try {
        int off = 0;
        while (data.length - off > HMAC_CHUNK) {
          byte[] chunk = new Marshal().tpm2b(Arrays.copyOfRange(data, off, off + HMAC_CHUNK)).toBytes();
          session.command("SequenceUpdate", CC_SEQUENCE_UPDATE, new int[] {seq}, seqName, chunk, new byte[0], 0, false,
              PolicySession.ENCRYPT_COMMAND);
          Arrays.fill(chunk, (byte) 0);
          off += HMAC_CHUNK;
        }
        byte[] last = new Marshal().tpm2b(Arrays.copyOfRange(data, off, data.length)).u32(Marshal.RH_NULL).toBytes();
        byte[] r = session.keepOpen(false).command("SequenceComplete", CC_SEQUENCE_COMPLETE, new int[] {seq}, seqName,
            last, new byte[0], 0, false, PolicySession.ENCRYPT_COMMAND | PolicySession.ENCRYPT_RESPONSE);
        Arrays.fill(last, (byte) 0);
        completed = true;
        return Marshal.tpm2b(ByteBuffer.wrap(r));
      } finally {
        if (!completed) flushRaw(s, seq); // a failed chunk leaves the sequence object loaded
      }
    });
  }

  @Override
  public byte[] encrypt(KeyHandle handle, byte[] plaintext, byte[] aad) {
    Key k = parse(handle, KeyAlgorithm.Kind.SYMMETRIC_AEAD, "encrypt");
    if (plaintext == null) throw new BackendException(Kind.INVALID_INPUT, "plaintext is required");
    byte[] salt = new byte[AEAD_SALT];
    byte[] nonce = new byte[AEAD_NONCE];
    SecureRandom r = RANDOM.get();
    r.nextBytes(salt);
    r.nextBytes(nonce);
    byte[] dek = hmac(k, concat(AEAD_LABEL, salt));
    byte[] out = new byte[AEAD_SALT + AEAD_NONCE + plaintext.length + AEAD_TAG];
    System.arraycopy(salt, 0, out, 0, AEAD_SALT);
    System.arraycopy(nonce, 0, out, AEAD_SALT, AEAD_NONCE);
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(dek, "AES"), new GCMParameterSpec(AEAD_TAG * 8, nonce));
      if (aad != null && aad.length > 0) c.updateAAD(aad);
      c.doFinal(plaintext, 0, plaintext.length, out, AEAD_SALT + AEAD_NONCE);
      return out;
    } catch (GeneralSecurityException e) {
      throw new BackendException(Kind.INTERNAL, "encryption failed to run", e);
    } finally {
      Arrays.fill(dek, (byte) 0);
    }
  }

  @Override
  public byte[] decrypt(KeyHandle handle, byte[] payload, byte[] aad) {
    Key k = parse(handle, KeyAlgorithm.Kind.SYMMETRIC_AEAD, "decrypt");
    if (payload == null || payload.length < AEAD_SALT + AEAD_NONCE + AEAD_TAG) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed",
          new IllegalArgumentException("payload shorter than salt, nonce and tag"));
    }
    byte[] dek = hmac(k, concat(AEAD_LABEL, Arrays.copyOf(payload, AEAD_SALT)));
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(dek, "AES"),
          new GCMParameterSpec(AEAD_TAG * 8, payload, AEAD_SALT, AEAD_NONCE));
      if (aad != null && aad.length > 0) c.updateAAD(aad);
      return c.doFinal(payload, AEAD_SALT + AEAD_NONCE, payload.length - AEAD_SALT - AEAD_NONCE);
    } catch (AEADBadTagException e) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed", e);
    } catch (GeneralSecurityException e) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed", e);
    } finally {
      Arrays.fill(dek, (byte) 0);
    }
  }

  /**
   * RSA-OAEP (SHA-256, MGF1-SHA256) in the TPM with an empty label. (The TPM
   * treats a non-empty label as a NUL-terminated string and appends the NUL
   * itself when the caller's label lacks it; an empty label stays empty, as in JCA.)
   */
  @Override
  public byte[] asymmetricDecrypt(KeyHandle handle, byte[] ciphertext) {
    Key k = parse(handle, KeyAlgorithm.Kind.ASYMMETRIC_DECRYPT, "decrypt");
    if (ciphertext == null || ciphertext.length == 0) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed",
          new IllegalArgumentException("empty ciphertext"));
    }
    if (ciphertext.length != k.alg().keyBits() / 8) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed",
          new IllegalArgumentException("ciphertext is not modulus-sized"));
    }
    return connection.execute(s -> {
      TPM_HANDLE h = load(s, k);
      byte[] params = new Marshal().tpm2b(ciphertext).u16(Marshal.ALG_NULL).tpm2b(new byte[0]).toBytes();
      // the plaintext comes back encrypted under the key's auth value
      return Marshal.tpm2b(ByteBuffer.wrap(userCommand(s, k, h, PolicyDigests.CC_RSA_DECRYPT, "RSA_Decrypt",
          params, 0, PolicySession.ENCRYPT_RESPONSE)));
    });
  }

  /** Random bytes from TPM2_GetRandom (which returns at most a digest's worth per call). */
  @Override
  public byte[] randomBytes(int length) {
    ensureOpen();
    if (length <= 0) throw new BackendException(Kind.INVALID_INPUT, "length must be > 0, was " + length);
    return connection.execute(s -> random(s, length));
  }

  static byte[] random(TpmSession s, int length) {
    // in a session salted to the SRK with response encryption: the bytes (a root seed, a caller's
    // GenerateRandom) cross the bus encrypted (ADR 0028); one session for all the chunks
    ByteArrayOutputStream out = new ByteArrayOutputStream(length);
    PolicySession session = s.saltedSession();
    while (out.size() < length) {
      int want = Math.min(32, length - out.size());
      boolean last = out.size() + want >= length;
      byte[] r = session.keepOpen(!last).command("GetRandom", CC_GET_RANDOM, new int[0], new byte[0][],
          new Marshal().u16(want).toBytes(), new byte[0], 0, false, PolicySession.ENCRYPT_RESPONSE);
      byte[] got = Marshal.tpm2b(ByteBuffer.wrap(r));
      if (got.length == 0) {
        session.reset();
        throw new TpmRcException("GetRandom(empty)", ResponseCodes.FAILURE);
      }
      if (got.length < want && last) {
        // fewer bytes than asked on the last chunk: the session is gone; go on in a new one
        session = s.saltedSession();
      }
      out.write(got, 0, Math.min(got.length, want));
      Arrays.fill(got, (byte) 0);
    }
    return out.toByteArray();
  }

  private static final int CC_GET_RANDOM = 0x17B;
  private static final int CC_SEQUENCE_UPDATE = 0x15C;
  private static final int CC_SEQUENCE_COMPLETE = 0x13E;

  // --- certify --------------------------------------------------------------------------

  @Override
  public KeyAttestation certify(KeyHandle handle, byte[] qualifyingData) {
    Key k = parse(handle);
    byte[] q = qualifyingData == null ? new byte[0] : qualifyingData.clone();
    if (q.length > MAX_QUALIFYING_DATA) {
      throw new BackendException(Kind.INVALID_INPUT, "qualifying data must be at most 64 bytes");
    }
    return connection.execute(s -> {
      TPM_HANDLE h = load(s, k);
      s.flushAllCachedExcept(k.handle()); // SRK + key + AK: the three slots of swtpm
      var ak = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), Templates.ak());
      try {
        ak.handle.AuthValue = new byte[0];
        byte[] akTpmt = ak.outPublic.toBytes();
        byte[][] parsed;
        // ADMIN role: through the policy's Certify branch (DUPLICABLE) or the HMAC session; the AK by empty password
        byte[] auth = authValue(k.blob().objectId());
        try {
          byte[] params = new Marshal().tpm2b(q).u16(Marshal.ALG_NULL).toBytes();
          int[] handles = {h.handle, ak.handle.handle};
          byte[][] names = {k.name(), Templates.name(akTpmt)};
          byte[] r = k.policy() != null
              ? s.policySession().authValueBranch(k.policy(), PolicyDigests.CC_CERTIFY, "Certify", handles, names,
                  params, auth, 0, true)
              : s.hmacSession().command("Certify", PolicyDigests.CC_CERTIFY, handles, names, params, auth, 0, true);
          parsed = parseCertify(ByteBuffer.wrap(r));
        } finally {
          Arrays.fill(auth, (byte) 0);
        }
        byte[] ekCert = readEkCertificate(s);
        return new KeyAttestation(parsed[0], TpmPublicKeys.derEcdsa(parsed[1], parsed[2]),
            TpmPublicKeys.spki(KeyAlgorithm.EC_SIGN_P256_SHA256, ak.outPublic), akTpmt, Templates.name(akTpmt),
            ekCert, Templates.name(k.blob().tpmtPublic()), k.blob().tpmtPublic());
      } finally {
        s.flush(ak.handle);
      }
    });
  }

  /** attest, r, s from a TPM2_Certify response: header | paramSize | TPM2B_ATTEST | TPMT_SIGNATURE(ECDSA). */
  private static byte[][] parseCertifyResponse(byte[] response) {
    ByteBuffer b = ByteBuffer.wrap(response);
    b.position(10 + 4);
    return parseCertify(b);
  }

  /** attest, r, s from TPM2_Certify's response parameters. */
  private static byte[][] parseCertify(ByteBuffer b) {
    byte[] attest = new byte[b.getShort() & 0xffff];
    b.get(attest);
    int sigAlg = b.getShort() & 0xffff;
    if (sigAlg != TPM_ALG_ID.ECDSA.toInt()) {
      throw new BackendException(Kind.INTERNAL, "AK signed with algorithm 0x" + Integer.toHexString(sigAlg));
    }
    b.getShort(); // hash
    byte[] r = new byte[b.getShort() & 0xffff];
    b.get(r);
    byte[] sv = new byte[b.getShort() & 0xffff];
    b.get(sv);
    return new byte[][] {attest, r, sv};
  }

  private static byte[] readEkCertificate(TpmSession s) {
    for (int index : new int[] {EK_CERT_ECC_NV, EK_CERT_RSA_NV}) {
      TPM_HANDLE nv = new TPM_HANDLE(index);
      NV_ReadPublicResponse p;
      try {
        p = s.run("NV_ReadPublic", () -> s.tpm().NV_ReadPublic(nv));
      } catch (TpmRcException e) {
        continue; // not defined
      }
      int size = p.nvPublic.dataSize;
      ByteArrayOutputStream out = new ByteArrayOutputStream(size);
      nv.AuthValue = new byte[0];
      nv.Name = p.nvName;
      try {
        for (int off = 0; off < size; off += NV_CHUNK) {
          int n = Math.min(NV_CHUNK, size - off);
          int o = off;
          byte[] chunk = s.run("NV_Read", () -> s.tpm().NV_Read(nv, nv, n, o));
          out.writeBytes(chunk);
        }
      } catch (TpmRcException e) {
        LOG.debugf("EK certificate at 0x%08x not readable: %s", index, e.getMessage());
        continue;
      }
      return out.toByteArray();
    }
    return null;
  }

  // --- duplication (ADR 0025) -----------------------------------------------------------

  /** The key's export policy, read from its public area (what the TPM enforces). */
  @Override
  public ExportPolicy exportPolicy(KeyHandle handle) {
    Key k = parse(handle);
    int attrs = k.pub().objectAttributes.toInt();
    byte[] policy = k.pub().authPolicy == null ? new byte[0] : k.pub().authPolicy;
    // fixedTPM, or no policy a session could satisfy (none, or tpmkms' no-duplication digest): it cannot leave
    return (attrs & Templates.FIXED_TPM) != 0 || policy.length == 0
        || MessageDigest.isEqual(policy, Templates.NO_DUPLICATION_POLICY)
        ? ExportPolicy.NON_EXPORTABLE : ExportPolicy.DUPLICABLE;
  }

  /** The key's authPolicy (empty for a key without one): the digest the TPM compares sessions with. */
  @Override
  public byte[] policyDigest(KeyHandle handle) {
    byte[] p = parse(handle).pub().authPolicy;
    return p == null ? new byte[0] : p.clone();
  }

  /** The key's platform binding (the PCRs and values its policy asserts), if it has one. */
  @Override
  public java.util.Optional<PlatformBinding> platformBinding(KeyHandle handle) {
    return java.util.Optional.ofNullable(parse(handle).blob().binding());
  }

  /** The SHA-256 values the PCRs hold now, in the selection's order (one TPM2_PCR_Read). */
  @Override
  public byte[][] pcrValues(int[] pcrs) {
    ensureOpen();
    int[] sorted = PlatformBinding.current(pcrs).pcrs();
    return connection.execute(s -> PcrPolicy.read(s, sorted));
  }

  /**
   * The PolicyOR branches of a DUPLICABLE key, in order (what a tpm2-tools user on the target
   * passes to {@code tpm2_policyor -l}); empty for other keys.
   */
  public java.util.List<byte[]> policyBranches(KeyHandle handle) {
    Key k = parse(handle);
    return k.policy() == null ? java.util.List.of() : k.policy().branches();
  }

  /** Whether the key came in by TPM2_Import of a duplication blob. */
  public boolean duplicated(KeyHandle handle) { return parse(handle).blob().duplicated(); }

  /** The duplication authority a DUPLICABLE key's policy names; null for other keys. */
  public byte[] duplicationAuthorityOf(KeyHandle handle) {
    byte[] a = parse(handle).blob().authorityName();
    return a == null ? null : a.clone();
  }

  /** This deployment's duplication authority: its name is in every DUPLICABLE key's DUP branch. */
  public byte[] duplicationAuthorityName() { return authority.name(); }

  /**
   * Duplicates a DUPLICABLE key to a storage key of another TPM, whose public area the caller has
   * verified ({@link DuplicationTargets}). In one TPM operation: the key's auth value is changed
   * to {@code transferAuth} (ADMIN branch, TPM2_ObjectChangeAuth, on a copy: the stored blob keeps
   * its own), the authority approves PolicyDuplicationSelect(key, target) and the TPM checks that
   * approval (TPM2_LoadExternal + TPM2_VerifySignature → PolicyAuthorize), and TPM2_Duplicate
   * wraps the key to the target with an outer wrapper only (symmetricAlg NULL): the result is what
   * {@code tpm2_import} takes on the target's TPM. The private part exists only inside the two TPMs.
   *
   * @param targetTpmtPublic the target storage key's TPMT_PUBLIC
   * @param transferAuth the auth value the duplicate carries (empty for tpm2-tools defaults)
   * @throws BackendException INVALID_INPUT for a NON_EXPORTABLE key or a target that is not a
   *     storage key; the TPM's own refusal (KEY_INVALID/INTERNAL) if it disagrees
   */
  public Duplication duplicate(KeyHandle handle, byte[] targetTpmtPublic, byte[] transferAuth) {
    Key k = parse(handle);
    if (k.policy() == null || !k.policy().duplicable()) {
      throw new BackendException(Kind.INVALID_INPUT, exportPolicy(handle) == ExportPolicy.NON_EXPORTABLE
          ? "the key is NON_EXPORTABLE" : "the key's policy is not a tpmkms DUPLICABLE policy (it came in by"
          + " duplication from outside tpmkms): tpmkms cannot approve its duplication");
    }
    if (!MessageDigest.isEqual(k.blob().authorityName(), authority.name())) {
      throw new BackendException(Kind.INVALID_INPUT, "the key's duplication authority is another deployment's ("
          + HexFormat.of().formatHex(k.blob().authorityName()) + "); only it can approve a duplication");
    }
    byte[] transfer = transferAuth == null ? new byte[0] : transferAuth.clone();
    if (transfer.length > 32) throw new BackendException(Kind.INVALID_INPUT, "transfer auth value is longer than 32 bytes");
    DuplicationTargets.Target target = DuplicationTargets.storageKey(targetTpmtPublic);
    byte[] targetName = target.name();
    byte[] signature = authority.approve(k.name(), targetName);
    byte[] approved = DuplicationAuthority.approvedPolicy(k.name(), targetName);
    byte[] aHash = PolicyDigests.approvalHash(approved, KeyPolicy.DUPLICATION_POLICY_REF);
    byte[] auth = authValue(k.blob().objectId());
    try {
      return connection.execute(s -> {
        TPM_HANDLE h = load(s, k);
        s.flushAllCachedExcept(k.handle()); // SRK + key, then the copy, the authority and the target
        PolicySession ps = s.policySession();
        byte[] changed = ps.authValueBranch(k.policy(), PolicyDigests.CC_OBJECT_CHANGE_AUTH, "ObjectChangeAuth",
            new int[] {h.handle, s.srk().handle}, new byte[][] {k.name(), s.srkName()},
            new Marshal().tpm2b(transfer).toBytes(), auth, 0, false, PolicySession.ENCRYPT_COMMAND);
        byte[] copyPrivate = Marshal.sizedTpm2b(ByteBuffer.wrap(changed));
        s.evict(k.handle());
        TPM_HANDLE copy = s.loadUncached(k.blob().tpmtPublic(), copyPrivate, transfer);
        int parent = 0;
        try {
          int authorityHandle = loadExternal(s, authority.tpmtPublic());
          byte[] ticket;
          try {
            byte[] r = s.raw("VerifySignature", Marshal.command(CC_VERIFY_SIGNATURE,
                new Marshal().u32(authorityHandle).tpm2b(aHash).bytes(signature).toBytes()));
            ticket = Arrays.copyOfRange(r, 10, r.length);
          } finally {
            flushRaw(s, authorityHandle);
          }
          parent = loadExternal(s, target.tpmtPublic());
          ps.policyDuplicationSelect(k.name(), targetName);
          ps.policyAuthorize(approved, KeyPolicy.DUPLICATION_POLICY_REF, authority.name(), ticket);
          ps.policyOr(k.policy().branchArray());
          byte[] r = ps.command("Duplicate", PolicyDigests.CC_DUPLICATE, new int[] {copy.handle, parent},
              new byte[][] {k.name(), targetName}, new Marshal().tpm2b(new byte[0]).u16(Marshal.ALG_NULL).toBytes(),
              new byte[0], 0, false);
          ByteBuffer b = ByteBuffer.wrap(r);
          Marshal.tpm2b(b); // encryptionKeyOut: empty without an inner wrapper
          byte[] duplicate = Marshal.sizedTpm2b(b);
          byte[] seed = Marshal.sizedTpm2b(b);
          return new Duplication(k.blob().tpm2bPublic(), duplicate, seed, authority.name());
        } finally {
          s.flush(copy);
          if (parent != 0) flushRaw(s, parent);
        }
      });
    } finally {
      Arrays.fill(auth, (byte) 0);
      Arrays.fill(transfer, (byte) 0);
    }
  }

  /**
   * Imports a key another TPM duplicated to this TPM's SRK ({@code tpm2_duplicate}, or another
   * tpmkms's {@link #duplicate}): TPM2_Import under the SRK (the TPM checks the outer wrapper's
   * integrity and the key's name), then TPM2_ObjectChangeAuth from {@code transferAuth} to an auth
   * value of this backend, so the transfer auth is worth nothing afterwards. Accepted objects: a
   * tpmkms DUPLICABLE key of {@code alg} (its policy names {@code authorityName}, or this
   * deployment's authority), or a foreign one ({@link Templates#matchesForeign}).
   *
   * @throws BackendException INVALID_INPUT if the object is not such a key, or the TPM refuses the
   *     blob (tampered, made for another parent, wrong transfer auth)
   */
  public GeneratedKey importDuplicate(KeyAlgorithm alg, Duplication in, byte[] transferAuth) {
    ensureOpen();
    if (alg == null || in == null) throw new BackendException(Kind.INVALID_INPUT, "algorithm and duplication blob are required");
    if (!description.supports(alg)) throw new BackendException(Kind.UNSUPPORTED, "this TPM does not support " + alg);
    byte[] tpm2bPublic = in.tpm2bPublic();
    TPMT_PUBLIC pub;
    try {
      if (tpm2bPublic.length < 4 || ((tpm2bPublic[0] & 0xff) << 8 | tpm2bPublic[1] & 0xff) != tpm2bPublic.length - 2) {
        throw new IllegalArgumentException("size");
      }
      pub = TPMT_PUBLIC.fromBytes(Arrays.copyOfRange(tpm2bPublic, 2, tpm2bPublic.length));
    } catch (RuntimeException e) {
      throw new BackendException(Kind.INVALID_INPUT, "the duplicated key's public area is malformed");
    }
    byte[] tpmt = Arrays.copyOfRange(tpm2bPublic, 2, tpm2bPublic.length);
    if (!Arrays.equals(pub.toBytes(), tpmt)) {
      throw new BackendException(Kind.INVALID_INPUT, "the duplicated key's public area has trailing or non-canonical bytes");
    }
    if (in.authorityName().length != 0 && in.authorityName().length != 34) {
      throw new BackendException(Kind.INVALID_INPUT, "the duplication authority name must be a 34-byte TPM name");
    }
    byte[] authorityName = null;
    KeyPolicy policy = null;
    for (byte[] candidate : new byte[][] {in.authorityName().length > 0 ? in.authorityName() : null, authority.name()}) {
      if (candidate == null || policy != null) continue;
      KeyPolicy p = KeyPolicy.duplicable(alg, candidate);
      if (Templates.matchesDuplicable(alg, pub, p, true)) {
        policy = p;
        authorityName = candidate;
      }
    }
    if (policy == null && !Templates.matchesForeign(alg, pub)) {
      throw new BackendException(Kind.INVALID_INPUT, "the duplicated object is not a " + alg + " key tpmkms can use "
          + "(the template's type and scheme, sign/decrypt as the purpose needs, not restricted, fixedTPM and "
          + "fixedParent CLEAR, and either a tpmkms DUPLICABLE policy or userWithAuth SET with adminWithPolicy CLEAR)");
    }
    byte[] duplicate = in.duplicate();
    byte[] seed = in.encryptedSeed();
    if (!wholeTpm2b(duplicate) || !wholeTpm2b(seed)) {
      throw new BackendException(Kind.INVALID_INPUT, "the duplicate and the encrypted seed must each be one TPM2B "
          + "(a uint16 size and exactly that many bytes), as tpm2_duplicate writes them");
    }
    byte[] transfer = transferAuth == null ? new byte[0] : transferAuth.clone();
    byte[] objectId = new byte[TpmBlob.OBJECT_ID_LENGTH];
    RANDOM.get().nextBytes(objectId);
    byte[] auth = authValue(objectId);
    KeyPolicy keyPolicy = policy;
    byte[] name = Templates.name(tpmt);
    int flags = TpmBlob.FLAG_IMPORTED | TpmBlob.FLAG_DUPLICATED | (policy != null ? TpmBlob.FLAG_DUPLICABLE : 0);
    byte[] authorityForBlob = authorityName;
    try {
      TpmBlob blob = connection.execute(s -> {
        s.flushAllCached();
        byte[] command = importDuplicateCommand(tpm2bPublic, duplicate, seed);
        setParent(command, s);
        byte[] outPrivate;
        try {
          outPrivate = firstTpm2b(s.raw("Import", command));
        } catch (TpmRcException e) {
          if (!refusesTheBlob(e)) throw e; // busy, out of memory, ...: the connection's retries and classification
          throw new BackendException(Kind.INVALID_INPUT, "the TPM refused the duplication blob ("
              + ResponseCodes.describe(e.rc()) + "): tampered, made for another parent, or not of this key");
        }
        TPM_HANDLE copy = s.loadUncached(tpmt, outPrivate, transfer);
        try {
          byte[] mine;
          try {
            if (keyPolicy != null) {
              byte[] r = s.policySession().authValueBranch(keyPolicy, PolicyDigests.CC_OBJECT_CHANGE_AUTH,
                  "ObjectChangeAuth", new int[] {copy.handle, s.srk().handle}, new byte[][] {name, s.srkName()},
                  new Marshal().tpm2b(auth).toBytes(), transfer, 0, false,
                  // the new auth value is encrypted under the transfer value, when there is one
                  transfer.length > 0 ? PolicySession.ENCRYPT_COMMAND : 0);
              mine = Marshal.sizedTpm2b(ByteBuffer.wrap(r));
            } else {
              mine = s.run("ObjectChangeAuth", () -> s.tpm().ObjectChangeAuth(copy, s.srk(), auth)).toBytes();
            }
          } catch (TpmRcException e) {
            if (!refusesTheBlob(e)) throw e;
            throw new BackendException(Kind.INVALID_INPUT, "the TPM refused the transfer auth value of the "
                + "duplicated key (" + ResponseCodes.describe(e.rc()) + ")");
          }
          return new TpmBlob(TpmBlob.BACKEND_TPM, alg.code(), s.srkName(), objectId, sized(tpmt), mine, flags,
              authorityForBlob);
        } finally {
          s.flush(copy);
        }
      });
      KeyHandle handle = new KeyHandle(blob.encode());
      Key k = decode(handle);
      connection.execute(s -> load(s, k));
      byte[] spki = alg.isAsymmetric() ? TpmPublicKeys.spki(alg, k.pub()) : null;
      return new GeneratedKey(handle, spki);
    } finally {
      Arrays.fill(auth, (byte) 0);
      Arrays.fill(transfer, (byte) 0);
    }
  }

  /**
   * The SRK's public area and a TPM2_Certify of it by this TPM's attestation key: what another
   * TPM needs to duplicate a key to this one (the duplication target of import jobs).
   */
  public KeyAttestation certifySrk(byte[] qualifyingData) {
    ensureOpen();
    byte[] q = qualifyingData == null ? new byte[0] : qualifyingData.clone();
    if (q.length > MAX_QUALIFYING_DATA) {
      throw new BackendException(Kind.INVALID_INPUT, "qualifying data must be at most 64 bytes");
    }
    return connection.execute(s -> {
      s.flushAllCached(); // SRK + AK
      var srkPublic = s.run("ReadPublic", () -> s.tpm().ReadPublic(s.srk()));
      byte[] srkTpmt = srkPublic.outPublic.toBytes();
      var ak = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), Templates.ak());
      try {
        ak.handle.AuthValue = new byte[0];
        TPM_HANDLE srk = s.srk();
        srk.AuthValue = new byte[0];
        s.run("Certify", () -> s.tpm().Certify(srk, ak.handle, q, new TPMS_NULL_SIG_SCHEME()));
        byte[][] parsed = parseCertifyResponse(s.lastResponse());
        byte[] akTpmt = ak.outPublic.toBytes();
        return new KeyAttestation(parsed[0], TpmPublicKeys.derEcdsa(parsed[1], parsed[2]),
            TpmPublicKeys.spki(KeyAlgorithm.EC_SIGN_P256_SHA256, ak.outPublic), akTpmt, Templates.name(akTpmt),
            readEkCertificate(s), Templates.name(srkTpmt), srkTpmt);
      } finally {
        s.flush(ak.handle);
      }
    });
  }

  /** Whether a response code says the blob (or its transfer auth) is wrong, not that the TPM is busy or full. */
  private static boolean refusesTheBlob(TpmRcException e) {
    return switch (e.base()) {
      case ResponseCodes.INTEGRITY, ResponseCodes.BINDING, ResponseCodes.SIZE, ResponseCodes.VALUE, ResponseCodes.KEY,
          ResponseCodes.ATTRIBUTES, ResponseCodes.HASH, ResponseCodes.SYMMETRIC, ResponseCodes.ECC_POINT,
          ResponseCodes.TYPE, ResponseCodes.SCHEME, ResponseCodes.KDF, ResponseCodes.KEY_SIZE,
          ResponseCodes.INSUFFICIENT, ResponseCodes.AUTH_FAIL, ResponseCodes.BAD_AUTH, ResponseCodes.ASYMMETRIC,
          ResponseCodes.CURVE, ResponseCodes.MODE, ResponseCodes.RANGE -> true;
      default -> false;
    };
  }

  /** Whether {@code b} is exactly one TPM2B: a uint16 size and that many bytes. */
  private static boolean wholeTpm2b(byte[] b) {
    return b.length >= 2 && ((b[0] & 0xff) << 8 | b[1] & 0xff) == b.length - 2;
  }

  private static final int CC_LOAD_EXTERNAL = 0x167;
  private static final int CC_VERIFY_SIGNATURE = 0x177;
  private static final int CC_FLUSH_CONTEXT = 0x165;

  /** TPM2_LoadExternal of a public area only, in the owner hierarchy; returns the handle. */
  static int loadExternal(TpmSession s, byte[] tpmtPublic) {
    byte[] r = s.raw("LoadExternal", Marshal.command(CC_LOAD_EXTERNAL,
        new Marshal().u16(0).tpm2b(tpmtPublic).u32(Marshal.RH_OWNER).toBytes()));
    return ByteBuffer.wrap(r, 10, 4).getInt();
  }

  static void flushRaw(TpmSession s, int handle) {
    try {
      s.raw("FlushContext", Marshal.command(CC_FLUSH_CONTEXT, new Marshal().u32(handle).toBytes()));
    } catch (RuntimeException e) {
      LOG.debugf("FlushContext 0x%08x: %s", handle, e.getMessage());
    }
  }

  /** TPM2_Import(SRK, encryptionKey empty, objectPublic, duplicate, inSymSeed, symmetricAlg NULL). */
  private static byte[] importDuplicateCommand(byte[] tpm2bPublic, byte[] tpm2bDuplicate, byte[] tpm2bSeed) {
    int size = 10 + 4 + 4 + 9 + 2 + tpm2bPublic.length + tpm2bDuplicate.length + tpm2bSeed.length + 2;
    ByteBuffer b = header(size, TPM_CC_IMPORT);
    b.putShort((short) 0); // encryptionKey
    b.put(tpm2bPublic).put(tpm2bDuplicate).put(tpm2bSeed);
    b.putShort((short) TPM_ALG_NULL);
    return b.array();
  }

  // --- destroy, close -------------------------------------------------------------------

  /** Flushes the key's object if it is loaded. The blob stays usable: the material is gone with the blob. */
  @Override
  public void destroy(KeyHandle handle) {
    if (handle == null || closed) return;
    parsed.remove(handle);
    connection.execute(s -> {
      s.evict(handle);
      return null;
    });
  }

  @Override
  public void close() {
    if (closed) return;
    closed = true;
    if (ownsConnection) connection.close();
  }

  private void ensureOpen() {
    if (closed || connection.isClosed()) throw new BackendException(Kind.UNAVAILABLE, "TPM backend is closed");
  }

  // --- helpers --------------------------------------------------------------------------

  private byte[] authValue(byte[] objectId) {
    try {
      Mac m = Mac.getInstance("HmacSHA256");
      m.init(authKey);
      m.update(AUTH_LABEL);
      return m.doFinal(objectId);
    } catch (GeneralSecurityException e) {
      throw new BackendException(Kind.INTERNAL, "HMAC-SHA256 unavailable", e);
    }
  }

  private static byte[] sized(byte[] b) {
    byte[] out = new byte[2 + b.length];
    out[0] = (byte) (b.length >>> 8);
    out[1] = (byte) b.length;
    System.arraycopy(b, 0, out, 2, b.length);
    return out;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}

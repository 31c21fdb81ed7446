package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import java.util.Map;

/**
 * TPM 2.0 response codes (TPM 2.0 Part 2, §6.6) and their one translation into
 * {@link BackendException} kinds: {@link #classify}. Nothing else in the adapter
 * maps response codes.
 */
public final class ResponseCodes {
  private ResponseCodes() {}

  public static final int SUCCESS = 0x000;
  // format 0, TPM_RC_VER1 = 0x100
  public static final int INITIALIZE = 0x100;
  public static final int FAILURE = 0x101;
  public static final int DISABLED = 0x120;
  public static final int AUTH_MISSING = 0x125;
  public static final int NV_UNINITIALIZED = 0x14A;
  public static final int BAD_CONTEXT = 0x150;
  // format 1, TPM_RC_FMT1 = 0x080
  public static final int ASYMMETRIC = 0x081;
  public static final int ATTRIBUTES = 0x082;
  public static final int HASH = 0x083;
  public static final int VALUE = 0x084;
  public static final int HIERARCHY = 0x085;
  public static final int KEY_SIZE = 0x087;
  public static final int MGF = 0x088;
  public static final int MODE = 0x089;
  public static final int TYPE = 0x08A;
  public static final int HANDLE = 0x08B;
  public static final int KDF = 0x08C;
  public static final int RANGE = 0x08D;
  public static final int AUTH_FAIL = 0x08E;
  public static final int SCHEME = 0x092;
  public static final int SIZE = 0x095;
  public static final int SYMMETRIC = 0x096;
  public static final int TAG = 0x097;
  public static final int INSUFFICIENT = 0x09A;
  public static final int SIGNATURE = 0x09B;
  public static final int KEY = 0x09C;
  public static final int INTEGRITY = 0x09F;
  public static final int BAD_AUTH = 0x0A2;
  public static final int BINDING = 0x0A5;
  public static final int CURVE = 0x0A6;
  public static final int ECC_POINT = 0x0A7;
  // warnings, TPM_RC_WARN = 0x900
  public static final int CONTEXT_GAP = 0x901;
  /**
   * TPM_RC_PCR_CHANGED: a PCR changed between a policy session's TPM2_PolicyPCR and the command it
   * authorizes. Retried: the whole operation runs again, its new session asserts the PCRs anew
   * (and fails with TPM_RC_VALUE if they no longer hold the bound values).
   */
  public static final int PCR_CHANGED = 0x128;
  public static final int OBJECT_MEMORY = 0x902;
  public static final int SESSION_MEMORY = 0x903;
  public static final int MEMORY = 0x904;
  public static final int OBJECT_HANDLES = 0x906;
  public static final int YIELDED = 0x908;
  public static final int CANCELED = 0x909;
  public static final int TESTING = 0x90A;
  public static final int REFERENCE_H0 = 0x910;
  public static final int NV_RATE = 0x920;
  public static final int LOCKOUT = 0x921;
  public static final int RETRY = 0x922;
  public static final int NV_UNAVAILABLE = 0x923;

  private static final Map<Integer, String> NAMES = Map.ofEntries(
      Map.entry(INITIALIZE, "TPM_RC_INITIALIZE"), Map.entry(FAILURE, "TPM_RC_FAILURE"),
      Map.entry(DISABLED, "TPM_RC_DISABLED"), Map.entry(AUTH_MISSING, "TPM_RC_AUTH_MISSING"),
      Map.entry(NV_UNINITIALIZED, "TPM_RC_NV_UNINITIALIZED"), Map.entry(BAD_CONTEXT, "TPM_RC_BAD_CONTEXT"),
      Map.entry(ASYMMETRIC, "TPM_RC_ASYMMETRIC"), Map.entry(ATTRIBUTES, "TPM_RC_ATTRIBUTES"),
      Map.entry(HASH, "TPM_RC_HASH"), Map.entry(VALUE, "TPM_RC_VALUE"), Map.entry(HIERARCHY, "TPM_RC_HIERARCHY"),
      Map.entry(KEY_SIZE, "TPM_RC_KEY_SIZE"), Map.entry(MGF, "TPM_RC_MGF"), Map.entry(MODE, "TPM_RC_MODE"),
      Map.entry(TYPE, "TPM_RC_TYPE"), Map.entry(HANDLE, "TPM_RC_HANDLE"), Map.entry(KDF, "TPM_RC_KDF"),
      Map.entry(RANGE, "TPM_RC_RANGE"), Map.entry(AUTH_FAIL, "TPM_RC_AUTH_FAIL"), Map.entry(SCHEME, "TPM_RC_SCHEME"),
      Map.entry(SIZE, "TPM_RC_SIZE"), Map.entry(SYMMETRIC, "TPM_RC_SYMMETRIC"), Map.entry(TAG, "TPM_RC_TAG"),
      Map.entry(INSUFFICIENT, "TPM_RC_INSUFFICIENT"), Map.entry(SIGNATURE, "TPM_RC_SIGNATURE"),
      Map.entry(KEY, "TPM_RC_KEY"), Map.entry(INTEGRITY, "TPM_RC_INTEGRITY"), Map.entry(BAD_AUTH, "TPM_RC_BAD_AUTH"),
      Map.entry(BINDING, "TPM_RC_BINDING"), Map.entry(CURVE, "TPM_RC_CURVE"), Map.entry(ECC_POINT, "TPM_RC_ECC_POINT"),
      Map.entry(CONTEXT_GAP, "TPM_RC_CONTEXT_GAP"), Map.entry(OBJECT_MEMORY, "TPM_RC_OBJECT_MEMORY"),
      Map.entry(SESSION_MEMORY, "TPM_RC_SESSION_MEMORY"), Map.entry(MEMORY, "TPM_RC_MEMORY"),
      Map.entry(OBJECT_HANDLES, "TPM_RC_OBJECT_HANDLES"), Map.entry(YIELDED, "TPM_RC_YIELDED"),
      Map.entry(CANCELED, "TPM_RC_CANCELED"), Map.entry(TESTING, "TPM_RC_TESTING"),
      Map.entry(REFERENCE_H0, "TPM_RC_REFERENCE_H0"), Map.entry(NV_RATE, "TPM_RC_NV_RATE"),
      Map.entry(LOCKOUT, "TPM_RC_LOCKOUT"), Map.entry(RETRY, "TPM_RC_RETRY"),
      Map.entry(NV_UNAVAILABLE, "TPM_RC_NV_UNAVAILABLE"));

  /** What the failed command was doing: the same code means different things for different commands. */
  public enum Op {
    /** TPM2_Load of a stored blob. */
    LOAD_BLOB,
    /** TPM2_Sign, TPM2_HMAC and sequences with a loaded key. */
    USE_KEY,
    /** TPM2_RSA_Decrypt. */
    DECRYPT,
    /** TPM2_Import of caller material, TPM2_Create with caller data (the import path). */
    IMPORT,
    /** Anything else: CreatePrimary, Create, GetRandom, Certify, Unseal, housekeeping. */
    OTHER
  }

  /** The code without the handle/parameter/session number (format 1) — what the names refer to. */
  public static int base(int rc) {
    if ((rc & 0x080) != 0) return rc & 0x0BF;
    return rc & 0xFFF;
  }

  public static boolean isRetryable(int rc) {
    int b = base(rc);
    return b == RETRY || b == YIELDED || b == TESTING || b == NV_RATE || b == CONTEXT_GAP || b == PCR_CHANGED;
  }

  /** The TPM refused an authorization (auth value, HMAC, policy, lockout). */
  public static boolean isAuthorization(int rc) {
    int b = base(rc);
    return b == AUTH_FAIL || b == BAD_AUTH || b == INTEGRITY || b == AUTH_MISSING || b == 0x09D /* POLICY_FAIL */
        || b == 0x12F /* AUTH_UNAVAILABLE */ || b == LOCKOUT || b == 0x124 /* AUTH_TYPE */;
  }

  public static boolean isObjectMemory(int rc) {
    int b = base(rc);
    return b == OBJECT_MEMORY || b == MEMORY || b == OBJECT_HANDLES;
  }

  /** "TPM_RC_X (0x...)" with the parameter/handle/session number when there is one. */
  public static String describe(int rc) {
    int b = base(rc);
    String name = NAMES.getOrDefault(b, "TPM_RC");
    String where = "";
    if ((rc & 0x080) != 0) {
      int n = (rc >>> 8) & 0xF;
      if ((rc & 0x040) != 0) {
        where = " on parameter " + n;
      } else if (n != 0) {
        where = n >= 8 ? " on session " + (n - 8) : " on handle " + n;
      }
    }
    return name + where + String.format(" (0x%03X)", rc);
  }

  /**
   * The one translation of a TPM response code into a backend error. Retries
   * (RETRY, YIELDED, TESTING) and the object-memory flush-and-retry happen
   * before this is called, in TpmConnection.
   */
  public static BackendException classify(TpmRcException e, Op op) {
    int rc = e.rc();
    int b = base(rc);
    String what = e.getMessage();
    if (b == RETRY || b == YIELDED || b == TESTING || b == NV_RATE || b == CANCELED || b == NV_UNAVAILABLE) {
      return new BackendException(Kind.UNAVAILABLE, "TPM busy: " + what, e);
    }
    if (b == OBJECT_MEMORY || b == SESSION_MEMORY || b == MEMORY || b == OBJECT_HANDLES) {
      return new BackendException(Kind.RESOURCE_EXHAUSTED, "TPM out of memory: " + what, e);
    }
    if (b == LOCKOUT) {
      return new BackendException(Kind.RESOURCE_EXHAUSTED,
          "TPM rate limited (dictionary-attack lockout): " + what, e);
    }
    switch (op) {
      case LOAD_BLOB -> {
        if ((rc & 0x080) != 0 || b == BAD_CONTEXT || b == 0x155 /* SENSITIVE */) {
          return new BackendException(Kind.KEY_INVALID,
              "TPM refused the key blob (corrupt, tampered, or made under another SRK): " + what, e);
        }
      }
      case USE_KEY -> {
        if (b == AUTH_FAIL || b == BAD_AUTH) {
          return new BackendException(Kind.KEY_INVALID,
              "TPM refused the key's authorization value (blob's object id corrupt, or another auth secret): "
                  + what, e);
        }
        if ((rc & 0x0C0) == 0x0C0) {
          return new BackendException(Kind.INVALID_INPUT, "TPM refused the input: " + what, e);
        }
      }
      case DECRYPT -> {
        if (b == AUTH_FAIL || b == BAD_AUTH) {
          return new BackendException(Kind.KEY_INVALID,
              "TPM refused the key's authorization value: " + what, e);
        }
        // libtpms 0.9 (OpenSSL) answers a bad OAEP padding with TPM_RC_FAILURE, the reference code with VALUE
        if ((rc & 0x080) != 0 || b == FAILURE) {
          return new BackendException(Kind.INVALID_INPUT, "decryption failed", e);
        }
      }
      case IMPORT -> {
        // the material was checked before (KeyMaterial); a TPM that still refuses it says why in the code
        if ((rc & 0x0C0) == 0x0C0 || b == KEY || b == BINDING || b == ECC_POINT || b == KEY_SIZE) {
          return new BackendException(Kind.INVALID_INPUT, "TPM refused the imported key material: " + what, e);
        }
      }
      case OTHER -> { }
    }
    return new BackendException(Kind.INTERNAL, "TPM command failed: " + what, e);
  }
}

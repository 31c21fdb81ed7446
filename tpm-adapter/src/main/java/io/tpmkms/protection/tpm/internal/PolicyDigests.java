package io.tpmkms.protection.tpm.internal;

import java.nio.ByteBuffer;
import java.security.MessageDigest;

/**
 * The policy digests of the TPM policy commands tpmkms uses, computed in software exactly as
 * the TPM extends a policy session's digest (TPM 2.0 Part 3, §23), SHA-256 only. The one place
 * where these formulas live; tests compare each with tpm2-tools' trial sessions.
 *
 * <pre>
 * PolicyCommandCode       H(old || TPM_CC_PolicyCommandCode || commandCode)
 * PolicyAuthValue         H(old || TPM_CC_PolicyAuthValue)
 * PolicyOR                H(0^32 || TPM_CC_PolicyOR || branch_1 || ... || branch_n)   (2..8 branches)
 * PolicyAuthorize         d = H(0^32 || TPM_CC_PolicyAuthorize || keySignName); H(d || policyRef)
 * PolicyDuplicationSelect H(old || TPM_CC_PolicyDuplicationSelect || objectName || newParentName || 1)
 *                         (includeObject YES; with NO: H(old || cc || newParentName || 0))
 * </pre>
 */
public final class PolicyDigests {
  private PolicyDigests() {}

  public static final int CC_POLICY_AUTHORIZE = 0x16A;
  public static final int CC_POLICY_AUTH_VALUE = 0x16B;
  public static final int CC_POLICY_COMMAND_CODE = 0x16C;
  public static final int CC_POLICY_OR = 0x171;
  public static final int CC_POLICY_SIGNED = 0x160;
  public static final int CC_POLICY_DUPLICATION_SELECT = 0x188;

  public static final int CC_DUPLICATE = 0x14B;
  public static final int CC_CERTIFY = 0x148;
  public static final int CC_OBJECT_CHANGE_AUTH = 0x150;
  public static final int CC_HMAC = 0x155;
  public static final int CC_IMPORT = 0x156;
  public static final int CC_RSA_DECRYPT = 0x159;
  public static final int CC_HMAC_START = 0x15B;
  public static final int CC_SIGN = 0x15D;

  public static final int DIGEST_LENGTH = 32;
  public static final int MAX_OR_BRANCHES = 8;

  /** The digest every policy session starts with. */
  public static byte[] zero() { return new byte[DIGEST_LENGTH]; }

  public static byte[] commandCode(byte[] old, int commandCode) {
    return hash(old, u32(CC_POLICY_COMMAND_CODE), u32(commandCode));
  }

  public static byte[] authValue(byte[] old) {
    return hash(old, u32(CC_POLICY_AUTH_VALUE));
  }

  public static byte[] or(byte[]... branches) {
    if (branches.length < 2 || branches.length > MAX_OR_BRANCHES) {
      throw new IllegalArgumentException("PolicyOR takes 2 to 8 branches, not " + branches.length);
    }
    byte[][] parts = new byte[branches.length + 2][];
    parts[0] = zero();
    parts[1] = u32(CC_POLICY_OR);
    for (int i = 0; i < branches.length; i++) {
      if (branches[i].length != DIGEST_LENGTH) throw new IllegalArgumentException("branch " + i + " is not a SHA-256 digest");
      parts[i + 2] = branches[i];
    }
    return hash(parts);
  }

  public static byte[] authorize(byte[] keySignName, byte[] policyRef) {
    byte[] d = hash(zero(), u32(CC_POLICY_AUTHORIZE), keySignName);
    return hash(d, policyRef);
  }

  public static byte[] duplicationSelect(byte[] old, byte[] objectName, byte[] newParentName, boolean includeObject) {
    return includeObject
        ? hash(old, u32(CC_POLICY_DUPLICATION_SELECT), objectName, newParentName, new byte[] {1})
        : hash(old, u32(CC_POLICY_DUPLICATION_SELECT), newParentName, new byte[] {0});
  }

  /** aHash, what the authority signs to approve a policy: H(approvedPolicy || policyRef). */
  public static byte[] approvalHash(byte[] approvedPolicy, byte[] policyRef) {
    return hash(approvedPolicy, policyRef);
  }

  /**
   * PolicySigned (and PolicySecret, PolicyAuthorize's first half): policyDigest' =
   * H(H(old || TPM_CC_PolicySigned || authObject's name) || policyRef).
   */
  public static byte[] signed(byte[] old, byte[] authObjectName, byte[] policyRef) {
    return hash(hash(old, u32(CC_POLICY_SIGNED), authObjectName), policyRef);
  }

  static byte[] u32(int v) { return ByteBuffer.allocate(4).putInt(v).array(); }

  public static byte[] hash(byte[]... parts) {
    MessageDigest md = SessionCrypto.sha256();
    for (byte[] p : parts) md.update(p);
    return md.digest();
  }
}

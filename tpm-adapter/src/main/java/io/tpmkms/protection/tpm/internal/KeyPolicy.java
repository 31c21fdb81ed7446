package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.PlatformBinding;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The authPolicy of a key that is used through policy sessions: a PolicyOR of one branch per role
 * and command, so the TPM, not the service, decides which session may do what with the object.
 *
 * <p>A DUPLICABLE key (ADR 0025):
 * <pre>
 * USER   per use command of the key's purpose:   PolicyCommandCode(cc) → PolicyAuthValue
 *          sign: TPM2_Sign; decrypt: TPM2_RSA_Decrypt; MAC: TPM2_HMAC, TPM2_HMAC_Start;
 *          AEAD: TPM2_HMAC (the per-message DEK derivation)
 * ADMIN  TPM2_Certify, TPM2_ObjectChangeAuth:     PolicyCommandCode(cc) → PolicyAuthValue
 * DUP    PolicyAuthorize(authority name, "tpmkms/duplication/v1"), where the authority signs,
 *        per export, PolicyDuplicationSelect(key name, target parent name, includeObject YES)
 * (AEAD keys only) the AEAD purpose marker of ADR 0009 as one more, unreachable, branch
 * </pre>
 *
 * <p>A platform-bound key (ADR 0036; NON_EXPORTABLE, fixedTPM and fixedParent SET):
 * <pre>
 * USER   per use command:   PolicyCommandCode(cc) → PolicyPCR(selection, pcrDigest) → PolicyAuthValue
 * ADMIN  Certify, ObjectChangeAuth: PolicyCommandCode(cc) → PolicyAuthValue   (no PCRs: an attestation
 *        still shows the binding after the platform changed; a changed auth value gives no use)
 * (AEAD keys only) the AEAD marker branch
 * </pre>
 *
 * The object has userWithAuth CLEAR and adminWithPolicy SET, so neither role can be had with the
 * auth value alone (a password or HMAC session). A DUPLICABLE key has fixedTPM/fixedParent CLEAR
 * so TPM2_Duplicate is possible at all — through the DUP branch only: no other branch names
 * TPM2_Duplicate. The branch order is part of the digest. Immutable.
 */
public record KeyPolicy(KeyAlgorithm algorithm, byte[] authorityName, List<byte[]> branches, List<Integer> commands,
    PlatformBinding binding) {

  public static final byte[] DUPLICATION_POLICY_REF = "tpmkms/duplication/v1".getBytes(StandardCharsets.US_ASCII);
  /** Marks the DUP branch in {@link #commands()}. */
  public static final int DUP_BRANCH = PolicyDigests.CC_DUPLICATE;
  /** Marks the AEAD marker branch in {@link #commands()}. */
  private static final int MARKER_BRANCH = 0;

  public KeyPolicy {
    authorityName = authorityName == null ? null : authorityName.clone();
    branches = List.copyOf(branches);
    commands = List.copyOf(commands);
    if ((authorityName == null) == (binding == null)) {
      throw new IllegalArgumentException("a key policy is either DUPLICABLE or platform-bound");
    }
    if (binding != null && !binding.resolved()) throw new IllegalArgumentException("the binding's values are not known");
  }

  @Override
  public byte[] authorityName() { return authorityName == null ? null : authorityName.clone(); }

  /** The policy of a DUPLICABLE key of {@code alg} whose duplications {@code authorityName} approves. */
  public static KeyPolicy duplicable(KeyAlgorithm alg, byte[] authorityName) {
    List<Integer> ccs = new ArrayList<>(useCommands(alg));
    ccs.add(PolicyDigests.CC_CERTIFY);
    ccs.add(PolicyDigests.CC_OBJECT_CHANGE_AUTH);
    List<byte[]> branches = new ArrayList<>();
    for (int cc : ccs) branches.add(authValueBranch(cc));
    branches.add(PolicyDigests.authorize(authorityName, DUPLICATION_POLICY_REF));
    ccs.add(DUP_BRANCH);
    if (alg.kind() == KeyAlgorithm.Kind.SYMMETRIC_AEAD) {
      branches.add(Templates.AEAD_POLICY_MARKER.clone());
      ccs.add(MARKER_BRANCH);
    }
    return new KeyPolicy(alg, authorityName, branches, ccs, null);
  }

  /** The policy of a key of {@code alg} the TPM uses only while the binding's PCRs hold its values. */
  public static KeyPolicy platformBound(KeyAlgorithm alg, PlatformBinding binding) {
    List<Integer> ccs = new ArrayList<>();
    List<byte[]> branches = new ArrayList<>();
    byte[] pcrDigest = binding.digest();
    for (int cc : useCommands(alg)) {
      ccs.add(cc);
      branches.add(PolicyDigests.authValue(PcrPolicy.policy(PolicyDigests.commandCode(PolicyDigests.zero(), cc),
          binding.pcrs(), pcrDigest)));
    }
    for (int cc : new int[] {PolicyDigests.CC_CERTIFY, PolicyDigests.CC_OBJECT_CHANGE_AUTH}) {
      ccs.add(cc);
      branches.add(authValueBranch(cc));
    }
    if (alg.kind() == KeyAlgorithm.Kind.SYMMETRIC_AEAD) {
      branches.add(Templates.AEAD_POLICY_MARKER.clone());
      ccs.add(MARKER_BRANCH);
    }
    return new KeyPolicy(alg, null, branches, ccs, binding);
  }

  /** Whether TPM2_Duplicate is possible through this policy (the DUP branch). */
  public boolean duplicable() { return authorityName != null; }

  /** Whether a session for {@code cc} must assert the binding's PCRs (a use command of a platform-bound key). */
  public boolean assertsPcrs(int cc) {
    return binding != null && useCommands(algorithm).contains(cc);
  }

  /** The commands the USER role runs on a key of the algorithm. */
  public static List<Integer> useCommands(KeyAlgorithm alg) {
    return switch (alg.kind()) {
      case SIGN -> List.of(PolicyDigests.CC_SIGN);
      case ASYMMETRIC_DECRYPT -> List.of(PolicyDigests.CC_RSA_DECRYPT);
      case MAC -> List.of(PolicyDigests.CC_HMAC, PolicyDigests.CC_HMAC_START);
      case SYMMETRIC_AEAD -> List.of(PolicyDigests.CC_HMAC);
    };
  }

  /** PolicyCommandCode(cc) → PolicyAuthValue from a fresh session. */
  public static byte[] authValueBranch(int cc) {
    return PolicyDigests.authValue(PolicyDigests.commandCode(PolicyDigests.zero(), cc));
  }

  /** The object's authPolicy: PolicyOR of the branches. */
  public byte[] authPolicy() {
    return PolicyDigests.or(branches.toArray(byte[][]::new));
  }

  /** Whether a session may authorize {@code cc} through a PolicyCommandCode (→ PolicyPCR) → PolicyAuthValue branch. */
  public boolean allows(int cc) {
    return cc != DUP_BRANCH && cc != MARKER_BRANCH && commands.contains(cc);
  }

  /** The branches as PolicyOR takes them. */
  public byte[][] branchArray() { return branches.toArray(byte[][]::new); }
}

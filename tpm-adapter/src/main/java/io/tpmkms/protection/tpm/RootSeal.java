package io.tpmkms.protection.tpm;

import io.tpmkms.protection.tpm.internal.PcrPolicy;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * How the software root seed is sealed (ADR 0034): to the values of SHA-256 PCRs (TPM2_PolicyPCR)
 * and/or an operator secret kept outside the data dir (TPM2_PolicyAuthValue; the object's auth
 * value is SHA-256 of the secret). Neither: the seed is sealed without a policy (anyone who reaches
 * the TPM and reads the data dir can unseal it) — allowed, with a warning, where PCRs mean nothing.
 *
 * @param pcrs ascending PCR indexes, empty for none
 * @param secret the operator secret, or null
 * @param newSecret a secret to re-seal with once the current one unsealed (rotation), or null
 * @param recoveryPublicArea the TPMT_PUBLIC of the offline recovery key ({@link RootRecovery}) whose
 *     signature also unseals the seed, or null for no recovery branch
 * @param recoveryKey the recovery key's private half, given only to recover (unseal through the
 *     recovery branch and re-seal to the platform state now), else null
 */
public record RootSeal(int[] pcrs, byte[] secret, byte[] newSecret, byte[] recoveryPublicArea,
    java.security.PrivateKey recoveryKey) {
  public RootSeal {
    pcrs = pcrs.length == 0 ? new int[0] : PcrPolicy.normalize(pcrs);
    if (secret != null && secret.length == 0) throw new IllegalArgumentException("an empty operator secret");
    if (newSecret != null && newSecret.length == 0) throw new IllegalArgumentException("an empty new operator secret");
    if (recoveryPublicArea != null && pcrs.length == 0 && secret == null) {
      throw new IllegalArgumentException("a recovery key recovers a seed bound to PCRs or a secret; this one has neither");
    }
  }

  public RootSeal(int[] pcrs, byte[] secret, byte[] newSecret) {
    this(pcrs, secret, newSecret, null, null);
  }

  /** No policy: the seed sealed as before ADR 0034. */
  public static final RootSeal NONE = new RootSeal(new int[0], null, null);

  /** Bound to the PCRs only. */
  public static RootSeal pcrs(int... pcrs) {
    return new RootSeal(pcrs, null, null);
  }

  public RootSeal withSecret(byte[] secret) {
    return new RootSeal(pcrs, secret, newSecret, recoveryPublicArea, recoveryKey);
  }

  public RootSeal withNewSecret(byte[] newSecret) {
    return new RootSeal(pcrs, secret, newSecret, recoveryPublicArea, recoveryKey);
  }

  /** With a recovery branch for this EC P-256 public key. */
  public RootSeal withRecovery(java.security.PublicKey recoveryPublic) {
    return new RootSeal(pcrs, secret, newSecret, recoveryPublic == null ? null : RootRecovery.publicArea(recoveryPublic),
        recoveryKey);
  }

  /** Recover at the next start with this private key (unseal through the recovery branch, re-seal). */
  public RootSeal withRecoveryKey(java.security.PrivateKey key) {
    return new RootSeal(pcrs, secret, newSecret, recoveryPublicArea, key);
  }

  public boolean hasPolicy() {
    return pcrs.length > 0 || secret != null;
  }

  /** The object's auth value: SHA-256 of the secret (a TPM auth value is at most a digest long). */
  static byte[] authValue(byte[] secret) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(secret);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** "PCRs 7, 16 and an operator secret", for logs and errors. */
  public String describe() {
    return describe(pcrs, secret != null);
  }

  static String describe(int[] pcrs, boolean secret) {
    if (pcrs.length == 0 && !secret) return "no policy";
    String p = pcrs.length == 0 ? "" : (pcrs.length == 1 ? "PCR " : "PCRs ")
        + String.join(", ", Arrays.stream(pcrs).mapToObj(Integer::toString).toList()) + " (SHA-256)";
    return secret ? (p.isEmpty() ? "an operator secret" : p + " and an operator secret") : p;
  }

  @Override
  public String toString() {
    return "RootSeal[" + describe() + (recoveryPublicArea != null ? ", recovery key" : "") + "]"; // never the secret
  }
}

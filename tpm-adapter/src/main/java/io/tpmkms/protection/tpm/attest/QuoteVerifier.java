package io.tpmkms.protection.tpm.attest;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Offline verification of a TPM2_Quote (TPM 2.0 Part 3 §18.4; TPMS_ATTEST and TPMS_QUOTE_INFO,
 * Part 2 §10.12) with the JDK alone. Checks, in order:
 *
 * <ol>
 *   <li>the AK public area parses and is a restricted, fixedTPM signing key (BAD_AK): only a
 *       restricted key refuses to sign data that starts with TPM_GENERATED_VALUE, which is what
 *       makes the statement the TPM's;
 *   <li>the TPMT_SIGNATURE (ECDSA, or RSASSA / RSAPSS; SHA-256 or SHA-384; the AK's scheme when it
 *       has one) verifies over the attest bytes under the AK (BAD_SIGNATURE);
 *   <li>the TPMS_ATTEST has magic 0xff544347 and type TPM_ST_ATTEST_QUOTE 0x8018, and nothing
 *       trails it (MALFORMED);
 *   <li>extraData equals the verifier's nonce (NONCE_MISMATCH): the quote is fresh;
 *   <li>the PCR selection is exactly the expected SHA-256 PCRs (SELECTION_MISMATCH);
 *   <li>pcrDigest equals the hash (the signature's) of the expected values concatenated in
 *       selection order (PCR_DIGEST_MISMATCH).
 * </ol>
 *
 * <p>Where the expected values come from is the caller's decision: values read from the TPM in the
 * same operation (they then only prove consistency), or values replayed from an event log
 * ({@link EventLog#replay}) — which is what binds the quote to what was measured. Not checked: that
 * the AK belongs to a genuine TPM (EkCertificateValidator + CredentialActivation, at enrollment).
 * Stateless and thread-safe.
 */
public final class QuoteVerifier {
  private QuoteVerifier() {}

  static final int TPM_GENERATED_VALUE = 0xff544347;
  static final int TPM_ST_ATTEST_QUOTE = 0x8018;
  private static final int ALG_SHA384 = 0x000C;
  private static final int FIXED_TPM = 0x2;
  private static final int RESTRICTED = 0x10000;
  private static final int SIGN = 0x40000;

  public enum Reason { BAD_AK, BAD_SIGNATURE, MALFORMED, NONCE_MISMATCH, SELECTION_MISMATCH, PCR_DIGEST_MISMATCH }

  /** The quote was refused; {@link #reason} says why in a word. */
  public static final class QuoteException extends Exception {
    private final Reason reason;

    public QuoteException(Reason reason, String message) { this(reason, message, null); }

    public QuoteException(Reason reason, String message, Throwable cause) {
      super(reason + ": " + message, cause);
      this.reason = reason;
    }

    public Reason reason() { return reason; }
  }

  /**
   * What a verified quote says besides the PCRs.
   *
   * @param clock the TPM's clock in milliseconds; {@code resetCount} (TPM resets, i.e. reboots) and
   *     {@code restartCount} (resumes) let a verifier notice a reboot between two quotes
   * @param safe whether the clock has not been set back
   * @param firmwareVersion the TPM vendor's firmware version
   * @param qualifiedSigner the AK's qualified name
   * @param pcrs the quoted SHA-256 PCRs, ascending
   */
  public record Verified(long clock, int resetCount, int restartCount, boolean safe, long firmwareVersion,
      byte[] qualifiedSigner, int[] pcrs, byte[] pcrDigest) {}

  /** The fields of a TPMS_ATTEST of a quote, parsed, nothing verified. */
  record Parsed(byte[] qualifiedSigner, byte[] extraData, long clock, int resetCount, int restartCount, boolean safe,
      long firmwareVersion, List<int[]> banks, byte[] pcrDigest) {}

  /**
   * @param akTpmtPublic the AK's public area (TPMT_PUBLIC)
   * @param attest the TPMS_ATTEST the AK signed
   * @param signature the TPMT_SIGNATURE
   * @param expectedNonce the nonce the verifier sent
   * @param expectedPcrValues the SHA-256 PCR values the quote must cover, by PCR index: its keys are
   *     the expected selection
   * @throws QuoteException with the reason the quote is refused
   */
  public static Verified verify(byte[] akTpmtPublic, byte[] attest, byte[] signature, byte[] expectedNonce,
      Map<Integer, byte[]> expectedPcrValues) throws QuoteException {
    int[] pcrs = Pcrs.normalize(expectedPcrValues.keySet().stream().mapToInt(Integer::intValue).toArray());
    TpmtPublic ak;
    try {
      ak = TpmtPublic.parse(akTpmtPublic);
    } catch (IllegalArgumentException e) {
      throw new QuoteException(Reason.BAD_AK, "the AK public area: " + e.getMessage(), e);
    }
    if (!ak.has(RESTRICTED | SIGN | FIXED_TPM)) {
      throw new QuoteException(Reason.BAD_AK, "the AK is not a restricted, fixedTPM signing key");
    }
    int hashAlg = verifySignature(ak, attest, signature);
    Parsed p = parse(attest);
    if (!MessageDigest.isEqual(p.extraData(), expectedNonce == null ? new byte[0] : expectedNonce)) {
      throw new QuoteException(Reason.NONCE_MISMATCH, "extraData is not the nonce (replayed or foreign quote)");
    }
    int[] quoted = sha256Selection(p.banks());
    if (!Arrays.equals(quoted, pcrs)) {
      throw new QuoteException(Reason.SELECTION_MISMATCH, "the quote covers SHA-256 PCRs " + Arrays.toString(quoted)
          + ", expected " + Arrays.toString(pcrs));
    }
    byte[][] values = new byte[pcrs.length][];
    for (int i = 0; i < pcrs.length; i++) values[i] = expectedPcrValues.get(pcrs[i]);
    byte[] digest;
    try {
      MessageDigest md = MessageDigest.getInstance(hashAlg == ALG_SHA384 ? "SHA-384" : "SHA-256");
      for (byte[] v : values) md.update(v);
      digest = md.digest();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
    if (!MessageDigest.isEqual(digest, p.pcrDigest())) {
      throw new QuoteException(Reason.PCR_DIGEST_MISMATCH, "the quoted PCR digest is not that of the expected values");
    }
    return new Verified(p.clock(), p.resetCount(), p.restartCount(), p.safe(), p.firmwareVersion(),
        p.qualifiedSigner(), pcrs, p.pcrDigest());
  }

  /** {@link #verify} of a quote made by {@link TpmAttestation#quote}, against the given values. */
  public static Verified verify(TpmAttestation.Quote quote, byte[] expectedNonce, Map<Integer, byte[]> expected)
      throws QuoteException {
    return verify(quote.akTpmtPublic(), quote.attest(), quote.signature(), expectedNonce, expected);
  }

  /** @return the signature's hash algorithm */
  private static int verifySignature(TpmtPublic ak, byte[] attest, byte[] signature) throws QuoteException {
    String jca;
    byte[] sig;
    int sigAlg;
    int hash;
    try {
      ByteBuffer b = ByteBuffer.wrap(signature);
      sigAlg = b.getShort() & 0xffff;
      hash = b.getShort() & 0xffff;
      if (hash != TpmtPublic.ALG_SHA256 && hash != ALG_SHA384) {
        throw new QuoteException(Reason.BAD_SIGNATURE, "signature hash 0x" + Integer.toHexString(hash));
      }
      String h = hash == ALG_SHA384 ? "SHA384" : "SHA256";
      if (sigAlg == TpmtPublic.ALG_ECDSA && !ak.isRsa()) {
        int n = TpmtPublic.coordinateBytes(ak.keyBitsOrCurve());
        byte[] r = TpmtPublic.tpm2b(b);
        byte[] s = TpmtPublic.tpm2b(b);
        if (r.length > n || s.length > n) throw new QuoteException(Reason.BAD_SIGNATURE, "ECDSA r or s too long");
        sig = new byte[2 * n];
        System.arraycopy(r, 0, sig, n - r.length, r.length);
        System.arraycopy(s, 0, sig, 2 * n - s.length, s.length);
        jca = h + "withECDSAinP1363Format";
      } else if ((sigAlg == TpmtPublic.ALG_RSASSA || sigAlg == TpmtPublic.ALG_RSAPSS) && ak.isRsa()) {
        sig = TpmtPublic.tpm2b(b);
        jca = sigAlg == TpmtPublic.ALG_RSASSA ? h + "withRSA" : "RSASSA-PSS";
      } else {
        throw new QuoteException(Reason.BAD_SIGNATURE, "signature algorithm 0x" + Integer.toHexString(sigAlg)
            + " does not fit the AK");
      }
      if (b.hasRemaining()) throw new QuoteException(Reason.MALFORMED, "trailing bytes after the signature");
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw new QuoteException(Reason.MALFORMED, "the TPMT_SIGNATURE is truncated", e);
    }
    if (ak.scheme() != TpmtPublic.ALG_NULL && (ak.scheme() != sigAlg || ak.schemeHash() != hash)) {
      throw new QuoteException(Reason.BAD_SIGNATURE, "the signature's scheme is not the AK's");
    }
    try {
      PublicKey key = ak.publicKey();
      int[] saltLengths = {0};
      if (jca.equals("RSASSA-PSS")) {
        // the TPM's salt is the hash's length (TPM 2.0 since 1.38) or, in older ones, the largest that fits
        int hashLen = hash == ALG_SHA384 ? 48 : 32;
        saltLengths = new int[] {hashLen,
            (((java.security.interfaces.RSAPublicKey) key).getModulus().bitLength() + 7) / 8 - hashLen - 2};
      }
      for (int salt : saltLengths) {
        Signature v = Signature.getInstance(jca);
        if (jca.equals("RSASSA-PSS")) {
          String md = hash == ALG_SHA384 ? "SHA-384" : "SHA-256";
          v.setParameter(new PSSParameterSpec(md, "MGF1", new MGF1ParameterSpec(md), salt, 1));
        }
        v.initVerify(key);
        v.update(attest);
        try {
          if (v.verify(sig)) return hash;
        } catch (SignatureException e) {
          // not a valid encoding: does not verify
        }
      }
      throw new QuoteException(Reason.BAD_SIGNATURE, "the signature does not verify under the AK");
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new QuoteException(Reason.BAD_AK, "the AK key cannot verify: " + e.getMessage(), e);
    }
  }

  /** Parses a quote's TPMS_ATTEST (no signature check). */
  static Parsed parse(byte[] attest) throws QuoteException {
    try {
      ByteBuffer b = ByteBuffer.wrap(attest);
      if (b.getInt() != TPM_GENERATED_VALUE) throw new QuoteException(Reason.MALFORMED, "magic is not TPM_GENERATED");
      int type = b.getShort() & 0xffff;
      if (type != TPM_ST_ATTEST_QUOTE) {
        throw new QuoteException(Reason.MALFORMED, "not a quote (type 0x" + Integer.toHexString(type) + ")");
      }
      byte[] signer = TpmtPublic.tpm2b(b);
      byte[] extra = TpmtPublic.tpm2b(b);
      long clock = b.getLong();
      int resetCount = b.getInt();
      int restartCount = b.getInt();
      boolean safe = b.get() != 0;
      long firmware = b.getLong();
      int count = b.getInt();
      if (count < 0 || count > 16) throw new QuoteException(Reason.MALFORMED, count + " PCR banks");
      List<int[]> banks = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        int alg = b.getShort() & 0xffff;
        int size = b.get() & 0xff;
        if (size > 32) throw new QuoteException(Reason.MALFORMED, "a PCR bitmap of " + size + " bytes");
        byte[] bitmap = new byte[size];
        b.get(bitmap);
        List<Integer> set = new ArrayList<>();
        for (int p = 0; p < size * 8; p++) if ((bitmap[p / 8] & (1 << (p % 8))) != 0) set.add(p);
        int[] bank = new int[1 + set.size()];
        bank[0] = alg;
        for (int j = 0; j < set.size(); j++) bank[1 + j] = set.get(j);
        banks.add(bank);
      }
      byte[] digest = TpmtPublic.tpm2b(b);
      if (b.hasRemaining()) throw new QuoteException(Reason.MALFORMED, "trailing bytes in the TPMS_ATTEST");
      return new Parsed(signer, extra, clock, resetCount, restartCount, safe, firmware, banks, digest);
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw new QuoteException(Reason.MALFORMED, "the TPMS_ATTEST is truncated", e);
    }
  }

  /** The SHA-256 PCRs of the selection; refused when another bank has PCRs selected. */
  private static int[] sha256Selection(List<int[]> banks) throws QuoteException {
    int[] out = new int[0];
    for (int[] bank : banks) {
      if (bank.length == 1) continue; // a bank with nothing selected
      if (bank[0] != TpmtPublic.ALG_SHA256) {
        throw new QuoteException(Reason.SELECTION_MISMATCH, "the quote covers PCRs of bank 0x" + Integer.toHexString(bank[0]));
      }
      if (out.length > 0) throw new QuoteException(Reason.SELECTION_MISMATCH, "the SHA-256 bank twice");
      out = Arrays.copyOfRange(bank, 1, bank.length);
    }
    return out;
  }
}

package io.tpmkms.protection.tpm.attest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.QuoteVerifier.QuoteException;
import io.tpmkms.protection.tpm.attest.QuoteVerifier.Reason;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Quotes on swtpm (and a second swtpm as "another TPM"): ours verify with our verifier and with
 * tpm2_checkquote; tpm2_quote's (ECDSA, RSASSA and RSAPSS AKs made by tpm2_createak) verify with ours; a wrong
 * nonce, a PCR extended after the quote, another selection, altered bytes and another TPM's AK are
 * refused with their reason.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class QuoteTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private Swtpm swtpm;
  private Swtpm other;
  private TpmConnection tpm;
  private TpmConnection otherTpm;
  private TpmAttestation att;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    other = Swtpm.start();
    tpm = TpmConnection.open(swtpm.config());
    otherTpm = TpmConnection.open(other.config());
    att = new TpmAttestation(tpm);
  }

  @AfterAll
  void stop() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {tpm, otherTpm, swtpm, other}) if (c != null) c.close();
  }

  @BeforeEach
  void resetPcr16() {
    att.resetPcr(16);
  }

  private static byte[] nonce() {
    byte[] n = new byte[20];
    RANDOM.nextBytes(n);
    return n;
  }

  private static Map<Integer, byte[]> values(TpmAttestation.Quote q) {
    Map<Integer, byte[]> m = new TreeMap<>();
    for (int i = 0; i < q.pcrs().length; i++) m.put(q.pcrs()[i], q.pcrValues()[i]);
    return m;
  }

  @Test
  void ourQuote_verifies_andTellsTheClock() throws Exception {
    att.extendPcr(16, new byte[32]);
    byte[] nonce = nonce();
    var q = att.quote(new int[] {16, 0, 7}, nonce);
    assertArrayEquals(new int[] {0, 7, 16}, q.pcrs());
    var v = QuoteVerifier.verify(q, nonce, values(q));
    assertArrayEquals(new int[] {0, 7, 16}, v.pcrs());
    assertTrue(v.safe());
    assertTrue(v.firmwareVersion() != 0);
    assertEquals(34, v.qualifiedSigner().length, "the AK's qualified name, SHA-256");
    var later = QuoteVerifier.verify(att.quote(new int[] {16}, nonce), nonce, Map.of(16, q.pcrValues()[2]));
    assertTrue(later.clock() >= v.clock());
    assertEquals(v.resetCount(), later.resetCount());
    // all 24 PCRs in one quote (three PCR_Read groups)
    int[] all = java.util.stream.IntStream.range(0, 24).toArray();
    var q24 = att.quote(all, nonce);
    assertEquals(24, q24.pcrValues().length);
    QuoteVerifier.verify(q24, nonce, values(q24));
  }

  @Test
  void aWrongNonce_isRefused() {
    byte[] nonce = nonce();
    var q = att.quote(new int[] {16}, nonce);
    assertReason(Reason.NONCE_MISMATCH, () -> QuoteVerifier.verify(q, nonce(), values(q)));
    assertReason(Reason.NONCE_MISMATCH, () -> QuoteVerifier.verify(q, new byte[0], values(q)));
  }

  @Test
  void aPcrExtendedAfterTheQuote_isRefused() {
    byte[] nonce = nonce();
    var q = att.quote(new int[] {0, 16}, nonce);
    att.extendPcr(16, sha256("an event after the quote"));
    byte[][] now = att.readPcrs(new int[] {0, 16});
    assertFalse(Arrays.equals(now[1], q.pcrValues()[1]));
    assertReason(Reason.PCR_DIGEST_MISMATCH, () -> QuoteVerifier.verify(q, nonce, Map.of(0, now[0], 16, now[1])));
  }

  @Test
  void anotherSelection_isRefused() {
    byte[] nonce = nonce();
    var q = att.quote(new int[] {0, 16}, nonce);
    assertReason(Reason.SELECTION_MISMATCH, () -> QuoteVerifier.verify(q, nonce, Map.of(16, q.pcrValues()[1])));
    assertReason(Reason.SELECTION_MISMATCH,
        () -> QuoteVerifier.verify(q, nonce, Map.of(0, q.pcrValues()[0], 16, q.pcrValues()[1], 23, new byte[32])));
  }

  @Test
  void alteredBytes_andAnotherTpmsAk_areRefused() {
    byte[] nonce = nonce();
    var q = att.quote(new int[] {16}, nonce);
    byte[] attest = q.attest();
    attest[attest.length - 1] ^= 1;
    assertReason(Reason.BAD_SIGNATURE,
        () -> QuoteVerifier.verify(q.akTpmtPublic(), attest, q.signature(), nonce, values(q)));
    byte[] sig = q.signature();
    sig[sig.length - 1] ^= 1;
    assertReason(Reason.BAD_SIGNATURE, () -> QuoteVerifier.verify(q.akTpmtPublic(), q.attest(), sig, nonce, values(q)));
    byte[] otherAk = new TpmAttestation(otherTpm).attestationKey().tpmtPublic();
    assertReason(Reason.BAD_SIGNATURE, () -> QuoteVerifier.verify(otherAk, q.attest(), q.signature(), nonce, values(q)));
    // an EK is no AK: not a restricted signing key
    byte[] ek = att.endorsementKey(TpmAttestation.EkType.ECC_P256).tpmtPublic();
    assertReason(Reason.BAD_AK, () -> QuoteVerifier.verify(ek, q.attest(), q.signature(), nonce, values(q)));
    assertReason(Reason.MALFORMED, () -> QuoteVerifier.verify(q.akTpmtPublic(), q.attest(),
        Arrays.copyOf(q.signature(), 10), nonce, values(q)));
  }

  @Test
  void parse_refusesTruncatedAndForeignStatements() {
    byte[] attest = att.quote(new int[] {16}, nonce()).attest();
    for (int n : new int[] {0, 3, 6, 20, attest.length - 1}) {
      assertReason(Reason.MALFORMED, () -> QuoteVerifier.parse(Arrays.copyOf(attest, n)));
    }
    byte[] certify = attest.clone();
    certify[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
    assertReason(Reason.MALFORMED, () -> QuoteVerifier.parse(certify));
    assertReason(Reason.MALFORMED, () -> QuoteVerifier.parse(Arrays.copyOf(attest, attest.length + 1)));
  }

  // --- tpm2-tools ---------------------------------------------------------------------------

  @Test
  void ourQuote_verifiesWithTpm2Checkquote() throws Exception {
    Path d = Files.createDirectories(swtpm.dir.resolve("checkquote"));
    byte[] nonce = nonce();
    att.extendPcr(16, sha256("measured"));
    var q = att.quote(new int[] {0, 16}, nonce);
    Files.write(d.resolve("msg"), q.attest());
    Files.write(d.resolve("sig"), q.signature());
    Files.write(d.resolve("pcrs"), concat(q.pcrValues()));
    byte[] spki = TpmtPublic.parse(q.akTpmtPublic()).publicKey().getEncoded();
    Files.writeString(d.resolve("ak.pem"), "-----BEGIN PUBLIC KEY-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(spki) + "\n-----END PUBLIC KEY-----\n");
    List<String> cmd = new ArrayList<>(List.of("tpm2_checkquote", "-u", d.resolve("ak.pem").toString(),
        "-m", d.resolve("msg").toString(), "-s", d.resolve("sig").toString(), "-f", d.resolve("pcrs").toString(),
        "-l", "sha256:0,16", "-g", "sha256", "-q", HexFormat.of().formatHex(nonce)));
    String ok = Swtpm.runAllowingFailure(cmd, 30);
    assertTrue(ok.startsWith("exit 0"), ok);
    cmd.set(cmd.size() - 1, HexFormat.of().formatHex(nonce()));
    assertFalse(Swtpm.runAllowingFailure(cmd, 30).startsWith("exit 0"), "tpm2_checkquote with another nonce");
  }

  @Test
  void tpm2QuoteWithToolsAks_verifiesWithOurs() throws Exception {
    for (String scheme : new String[] {"ecc:ecdsa", "rsa:rsassa", "rsa:rsapss"}) {
      String alg = scheme.substring(0, 3);
      Path d = Files.createDirectories(swtpm.dir.resolve("tpm2quote-" + scheme.replace(':', '-')));
      tools("tpm2_createek", "-c", d.resolve("ek.ctx"), "-G", "rsa");
      tools("tpm2_createak", "-C", d.resolve("ek.ctx"), "-c", d.resolve("ak.ctx"), "-G", alg, "-g", "sha256",
          "-s", scheme.substring(4));
      tools("tpm2_readpublic", "-c", d.resolve("ak.ctx"), "-o", d.resolve("ak.pub"));
      tools("tpm2_pcrextend", "16:sha256=" + HexFormat.of().formatHex(sha256(scheme)));
      byte[] nonce = nonce();
      tools("tpm2_quote", "-c", d.resolve("ak.ctx"), "-l", "sha256:16", "-q", HexFormat.of().formatHex(nonce),
          "-m", d.resolve("msg"), "-s", d.resolve("sig"), "-o", d.resolve("pcrs"), "-g", "sha256",
          "--scheme", scheme.substring(4));
      byte[] ak = TpmtPublic.fromTpm2b(Files.readAllBytes(d.resolve("ak.pub")));
      byte[] msg = Files.readAllBytes(d.resolve("msg"));
      byte[] sig = Files.readAllBytes(d.resolve("sig"));
      byte[] pcr16 = att.readPcrs(new int[] {16})[0];
      var v = QuoteVerifier.verify(ak, msg, sig, nonce, Map.of(16, pcr16));
      assertArrayEquals(new int[] {16}, v.pcrs(), scheme);
      assertEquals(scheme.endsWith("rsapss") ? TpmtPublic.ALG_RSAPSS : scheme.endsWith("rsassa") ? TpmtPublic.ALG_RSASSA
          : TpmtPublic.ALG_ECDSA, ((sig[0] & 0xff) << 8) | (sig[1] & 0xff), "the signature's scheme");
      assertReason(Reason.PCR_DIGEST_MISMATCH, () -> QuoteVerifier.verify(ak, msg, sig, nonce, Map.of(16, new byte[32])));
      assertReason(Reason.NONCE_MISMATCH, () -> QuoteVerifier.verify(ak, msg, sig, nonce(), Map.of(16, pcr16)));
      att.resetPcr(16);
    }
  }

  // --- helpers ------------------------------------------------------------------------------

  private static void assertReason(Reason reason, org.junit.jupiter.api.function.Executable call) {
    QuoteException e = assertThrows(QuoteException.class, call);
    assertEquals(reason, e.reason(), e.getMessage());
  }

  static byte[] sha256(String s) {
    try {
      return java.security.MessageDigest.getInstance("SHA-256").digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static byte[] concat(byte[][] values) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (byte[] v : values) out.writeBytes(v);
    return out.toByteArray();
  }

  private void tools(Object... args) throws Exception {
    tpm.releaseConnection(); // swtpm serves one connection at a time
    List<String> cmd = new ArrayList<>(List.of(args[0].toString(), "-T", swtpm.tcti()));
    for (int i = 1; i < args.length; i++) cmd.add(args[i].toString());
    String out = Swtpm.runAllowingFailure(cmd, 60);
    assertTrue(out.startsWith("exit 0"), out);
    // without a resource manager the tools leave their objects loaded; swtpm holds three
    Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", swtpm.tcti(), "-t"), 30);
  }
}

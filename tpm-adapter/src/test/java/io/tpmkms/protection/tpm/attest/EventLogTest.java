package io.tpmkms.protection.tpm.attest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.EventLog.EventLogException;
import io.tpmkms.protection.tpm.attest.QuoteVerifier.QuoteException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The event log on swtpm: a measuring agent's log (our writer, extending PCR 16) replays to exactly
 * the value the TPM reads, tpm2_eventlog replays it to the same value, and a quote verifies against
 * the replayed value; an altered or missing event no longer does. Hostile logs (truncated at every
 * byte, huge sizes, wrong digest counts, too many events, too big) are MALFORMED with an offset,
 * never an OutOfMemoryError or a runtime exception.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EventLogTest {
  private Swtpm swtpm;
  private TpmConnection tpm;
  private TpmAttestation att;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    tpm = TpmConnection.open(swtpm.config());
    att = new TpmAttestation(tpm);
  }

  @AfterAll
  void stop() throws Exception {
    if (tpm != null) tpm.close();
    if (swtpm != null) swtpm.close();
  }

  @BeforeEach
  void resetPcr16() {
    att.resetPcr(16);
  }

  private static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

  /** A measuring agent's boot: four events into PCR 16 of the TPM and the log. */
  private byte[] measuredLog() {
    EventLogWriter w = new EventLogWriter();
    w.measure(att, 16, EventLog.EV_IPL, utf8("linux /vmlinuz root=/dev/sda1\0"));
    w.measure(att, 16, EventLog.EV_EFI_ACTION, utf8("Exit Boot Services Invocation"));
    w.measure(att, 16, EventLog.EV_EFI_VARIABLE_BOOT, efiVariable("BootOrder", new byte[] {1, 0}));
    w.measure(att, 16, EventLog.EV_SEPARATOR, new byte[4]);
    return w.toBytes();
  }

  @Test
  void ourLog_replaysToThePcrTheTpmHolds_andAQuoteVerifiesAgainstIt() throws Exception {
    byte[] bytes = measuredLog();
    EventLog log = EventLog.parse(bytes);
    assertEquals(4, log.events().size());
    assertEquals("linux /vmlinuz root=/dev/sda1", log.events().get(0).text());
    assertEquals("Exit Boot Services Invocation", log.events().get(1).text());
    assertEquals("BootOrder", log.events().get(2).text());
    assertEquals("EV_SEPARATOR", log.events().get(3).typeName());
    assertNull(log.events().get(3).text());
    Map<Integer, byte[]> replayed = log.replay(new int[] {16});
    byte[] inTpm = att.readPcrs(new int[] {16})[0];
    assertArrayEquals(inTpm, replayed.get(16));

    byte[] nonce = utf8("a verifier's fresh nonce");
    var quote = att.quote(new int[] {16}, nonce);
    QuoteVerifier.verify(quote, nonce, replayed);

    // one event's digest altered: the log no longer explains the quote
    byte[] altered = bytes.clone();
    int digestAt = (int) log.events().get(1).offset() + 4 + 4 + 4 + 2;
    altered[digestAt] ^= 1;
    Map<Integer, byte[]> wrong = EventLog.parse(altered).replay(new int[] {16});
    assertFalse(Arrays.equals(inTpm, wrong.get(16)));
    QuoteException e = assertThrows(QuoteException.class, () -> QuoteVerifier.verify(quote, nonce, wrong));
    assertEquals(QuoteVerifier.Reason.PCR_DIGEST_MISMATCH, e.reason());
    // an event left out: neither
    byte[] dropped = Arrays.copyOf(bytes, (int) log.events().get(3).offset());
    assertEquals(3, EventLog.parse(dropped).events().size());
    assertThrows(QuoteException.class, () -> QuoteVerifier.verify(quote, nonce, EventLog.parse(dropped).replay(new int[] {16})));
  }

  @Test
  void tpm2Eventlog_replaysOurLogToTheSameValue() throws Exception {
    byte[] bytes = measuredLog();
    Path file = Files.createDirectories(swtpm.dir.resolve("eventlog")).resolve("binary_bios_measurements");
    Files.write(file, bytes);
    String out = Swtpm.runAllowingFailure(List.of("tpm2_eventlog", file.toString()), 30);
    assertTrue(out.startsWith("exit 0"), out);
    String expected = "16 : 0x" + HexFormat.of().formatHex(att.readPcrs(new int[] {16})[0]);
    assertTrue(out.contains(expected), out);
  }

  @Test
  void sha1AndSha256Log_andStartupLocality() throws Exception {
    EventLogWriter w = new EventLogWriter(EventLog.ALG_SHA1, EventLog.ALG_SHA256).startupLocality(3);
    byte[] d = w.append(0, 0x8, utf8("firmware version 1"));
    EventLog log = EventLog.parse(w.toBytes());
    assertEquals(Map.of(EventLog.ALG_SHA1, 20, EventLog.ALG_SHA256, 32), log.specId().digestSizes());
    assertEquals(3, log.startupLocality());
    assertEquals(2, log.events().size());
    assertEquals(20, log.events().get(1).digests().get(EventLog.ALG_SHA1).length);
    byte[] start = new byte[32];
    start[31] = 3;
    var md = java.security.MessageDigest.getInstance("SHA-256");
    md.update(start);
    md.update(d);
    assertArrayEquals(md.digest(), log.replay(new int[] {0}).get(0), "PCR 0 starts at the locality");
    assertArrayEquals(new byte[32], log.replay(new int[] {5}).get(5), "untouched PCRs stay zero");
    assertEquals(0xff, log.replay(new int[] {17}).get(17)[0] & 0xff, "dynamic PCRs start at all ones");
  }

  @Test
  void aSha1OnlyLog_cannotBeReplayedForSha256() throws Exception {
    EventLogWriter w = new EventLogWriter(EventLog.ALG_SHA1);
    w.append(4, EventLog.EV_SEPARATOR, new byte[4]);
    EventLog log = EventLog.parse(w.toBytes());
    assertNull(log.events().get(0).sha256());
    assertThrows(EventLogException.class, () -> log.replay(new int[] {4}));
  }

  // --- hostile logs -------------------------------------------------------------------------

  @Test
  void truncatedAtEveryByte_isMalformed_neverAnotherException() throws Exception {
    byte[] bytes = measuredLog();
    int headerEnd = (int) EventLog.parse(bytes).events().get(0).offset();
    for (int n = 0; n < bytes.length; n++) {
      byte[] cut = Arrays.copyOf(bytes, n);
      boolean atBoundary = n >= headerEnd && isEventBoundary(bytes, n);
      if (atBoundary) {
        EventLog.parse(cut); // a shorter, well-formed log
      } else {
        EventLogException e = assertThrows(EventLogException.class, () -> EventLog.parse(cut), "cut at " + n);
        assertTrue(e.offset() >= 0 && e.offset() <= n, e.getMessage());
      }
    }
  }

  private static boolean isEventBoundary(byte[] bytes, int n) throws EventLogException {
    for (var e : EventLog.parse(bytes).events()) if (e.offset() == n) return true;
    return false;
  }

  @Test
  void hugeSizes_areMalformed_withTheirOffset() throws Exception {
    byte[] bytes = measuredLog();
    EventLog log = EventLog.parse(bytes);
    int second = (int) log.events().get(1).offset();
    // eventSize of the second event: after pcr, type, count, alg, digest
    int sizeAt = second + 4 + 4 + 4 + 2 + 32;
    byte[] huge = bytes.clone();
    ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putInt(sizeAt, 0xFFFFFFFF);
    EventLogException e = assertThrows(EventLogException.class, () -> EventLog.parse(huge));
    assertEquals(sizeAt, e.offset(), e.getMessage());

    byte[] count = bytes.clone();
    ByteBuffer.wrap(count).order(ByteOrder.LITTLE_ENDIAN).putInt(second + 8, 0x7FFFFFFF);
    assertEquals(second, assertThrows(EventLogException.class, () -> EventLog.parse(count)).offset());

    byte[] two = bytes.clone(); // one digest too many for the header's one algorithm
    ByteBuffer.wrap(two).order(ByteOrder.LITTLE_ENDIAN).putInt(second + 8, 2);
    assertEquals(second, assertThrows(EventLogException.class, () -> EventLog.parse(two)).offset());

    byte[] alg = bytes.clone(); // a SHA-384 digest id where the header says SHA-256 only
    ByteBuffer.wrap(alg).order(ByteOrder.LITTLE_ENDIAN).putShort(second + 12, (short) EventLog.ALG_SHA384);
    assertEquals(second, assertThrows(EventLogException.class, () -> EventLog.parse(alg)).offset());

    byte[] pcr = bytes.clone();
    ByteBuffer.wrap(pcr).order(ByteOrder.LITTLE_ENDIAN).putInt(second, 0x40000000);
    assertEquals(second, assertThrows(EventLogException.class, () -> EventLog.parse(pcr)).offset());

    byte[] header = bytes.clone(); // numberOfAlgorithms
    ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN).putInt(32 + 16 + 8, 0x10000000);
    assertThrows(EventLogException.class, () -> EventLog.parse(header));

    byte[] headerSize = bytes.clone(); // the Spec ID event's size
    ByteBuffer.wrap(headerSize).order(ByteOrder.LITTLE_ENDIAN).putInt(28, Integer.MAX_VALUE);
    assertEquals(28, assertThrows(EventLogException.class, () -> EventLog.parse(headerSize)).offset());

    byte[] digestSize = bytes.clone(); // the header says SHA-256 digests have 20 bytes
    ByteBuffer.wrap(digestSize).order(ByteOrder.LITTLE_ENDIAN).putShort(32 + 16 + 8 + 4 + 2, (short) 20);
    assertThrows(EventLogException.class, () -> EventLog.parse(digestSize));

    byte[] notSpecId = bytes.clone();
    notSpecId[32] = 'X';
    assertThrows(EventLogException.class, () -> EventLog.parse(notSpecId));
  }

  @Test
  void tooManyEvents_andTooBigLogs_areRefused() throws Exception {
    EventLogWriter w = new EventLogWriter();
    byte[] zero = new byte[32];
    for (int i = 0; i < EventLog.MAX_EVENTS; i++) {
      w.appendDigests(16, EventLog.EV_SEPARATOR, Map.of(EventLog.ALG_SHA256, zero), new byte[0]);
    }
    assertEquals(EventLog.MAX_EVENTS, EventLog.parse(w.toBytes()).events().size());
    w.appendDigests(16, EventLog.EV_SEPARATOR, Map.of(EventLog.ALG_SHA256, zero), new byte[0]);
    EventLogException e = assertThrows(EventLogException.class, () -> EventLog.parse(w.toBytes()));
    assertTrue(e.getMessage().contains("more than 100000 events"), e.getMessage());
    assertEquals(0, assertThrows(EventLogException.class,
        () -> EventLog.parse(new byte[EventLog.MAX_BYTES + 1])).offset());
  }

  // --- helpers ------------------------------------------------------------------------------

  /** UEFI_VARIABLE_DATA: GUID, name length (chars), data length, UTF-16LE name, data. */
  private static byte[] efiVariable(String name, byte[] data) {
    byte[] n = name.getBytes(StandardCharsets.UTF_16LE);
    return ByteBuffer.allocate(16 + 8 + 8 + n.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
        .put(new byte[16]).putLong(name.length()).putLong(data.length).put(n).put(data).array();
  }
}

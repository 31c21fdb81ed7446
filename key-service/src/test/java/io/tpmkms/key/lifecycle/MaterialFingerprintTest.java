package io.tpmkms.key.lifecycle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class MaterialFingerprintTest {
  static final byte[] FP = HexFormat.of().parseHex("11".repeat(32));
  static final byte[] OTHER = HexFormat.of().parseHex("22".repeat(32));

  @Test
  void sealedRecord_matchesItsFingerprintOnly() {
    byte[] stored = MaterialFingerprint.seal(FP);
    assertEquals(48, stored.length);
    assertTrue(MaterialFingerprint.matches(stored, FP));
    assertFalse(MaterialFingerprint.matches(stored, OTHER));
  }

  @Test
  void sameMaterialTwice_givesUnlinkableRecords_thatBothMatch() {
    byte[] a = MaterialFingerprint.seal(FP);
    byte[] b = MaterialFingerprint.seal(FP);
    assertFalse(Arrays.equals(a, b), "a fresh salt per version");
    assertNotEquals(HexFormat.of().formatHex(a).substring(32), HexFormat.of().formatHex(b).substring(32));
    assertTrue(MaterialFingerprint.matches(a, FP) && MaterialFingerprint.matches(b, FP));
  }

  @Test
  void tamperedOrMissingRecord_matchesNothing() {
    byte[] stored = MaterialFingerprint.seal(FP);
    stored[40] ^= 1;
    assertFalse(MaterialFingerprint.matches(stored, FP));
    assertFalse(MaterialFingerprint.matches(null, FP));
    assertFalse(MaterialFingerprint.matches(FP, FP), "a bare unsalted hash is not a record");
  }
}

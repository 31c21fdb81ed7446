package io.tpmkms.kmsplugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class KeyIdTest {
  @Test
  void format_andParse_roundTrip() {
    KeyId id = new KeyId("kube-system/etcd-secrets", 3);
    assertEquals("tpmkms:kube-system/etcd-secrets:v3", id.toString());
    assertEquals(id, KeyId.parse("tpmkms:kube-system/etcd-secrets:v3"));
    assertEquals(Integer.MAX_VALUE, KeyId.parse("tpmkms:a/b:v2147483647").version());
  }

  @Test
  void parse_anythingElse_illegalArgument() {
    for (String s : new String[] {"", "tpmkms:a/b", "tpmkms:a/b:v0", "tpmkms:a/b:v2147483648", "tpmkms:a/b:v01",
        "tpmkms:a:v1", "tpmkms:a/b/c:v1", "tpmkms:a/b:3", "aws:a/b:v1", "tpmkms:a/b:v1 ", "tpmkms:a b/c:v1"}) {
      assertThrows(IllegalArgumentException.class, () -> KeyId.parse(s), s);
    }
  }

  @Test
  void longestKeyId_fitsKubernetesLimit() {
    String longest = new KeyId("n".repeat(63) + "/" + "k".repeat(63), Integer.MAX_VALUE).toString();
    assertTrue(longest.length() <= 1024, longest);
    assertEquals(146, longest.length());
  }
}

package io.tpmkms.platform.paging;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.longrunning.ListOperationsRequest;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.util.Arrays;
import java.util.Base64;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class PageTokensTest {
  static final byte[] SECRET = new byte[32];

  static {
    Arrays.fill(SECRET, (byte) 7);
  }

  final PageTokens tokens = PageTokens.withSecret(SECRET);

  static ListOperationsRequest query(String filter, String token) {
    return ListOperationsRequest.newBuilder().setName("ops").setFilter(filter).setPageSize(10).setPageToken(token)
        .build();
  }

  static void assertInvalid(Executable e) {
    PageTokens.InvalidPageToken x = assertThrows(PageTokens.InvalidPageToken.class, e);
    assertEquals(PageTokens.INVALID_PAGE_TOKEN, x.reason());
  }

  @Test
  void issued_opensToItsPosition_evenWithAnotherPageSize() {
    String t = tokens.issue(query("a", ""), "ns\0name");
    assertEquals("ns\0name", tokens.openString(query("a", t), null));
    assertEquals("ns\0name", tokens.openString(query("a", t).toBuilder().setPageSize(999).build(), null));
    String l = tokens.issue(query("a", ""), 42L);
    assertEquals(42L, tokens.openLong(query("a", l), 0));
    assertTrue(t.matches("[A-Za-z0-9_-]+"), t);
  }

  @Test
  void noToken_isTheFirstPage() {
    assertNull(tokens.open(query("a", "")));
    assertEquals(5L, tokens.openLong(query("a", ""), 5));
  }

  @Test
  void tokenOfOtherFilters_rejected() {
    String t = tokens.issue(query("a", ""), 42L);
    assertInvalid(() -> tokens.openLong(query("b", t), 0));
    assertInvalid(() -> tokens.openLong(query("a", t).toBuilder().setName("other").build(), 0));
  }

  @Test
  void alteredOrTruncatedOrOtherVersionOrOtherSecret_rejected() {
    String t = tokens.issue(query("a", ""), 42L);
    byte[] raw = Base64.getUrlDecoder().decode(t);
    for (int i = 0; i < raw.length; i++) {
      byte[] altered = raw.clone();
      altered[i] ^= 1;
      String a = Base64.getUrlEncoder().withoutPadding().encodeToString(altered);
      assertInvalid(() -> tokens.openLong(query("a", a), 0));
    }
    String truncated = Base64.getUrlEncoder().withoutPadding().encodeToString(Arrays.copyOf(raw, 10));
    assertInvalid(() -> tokens.openLong(query("a", truncated), 0));
    byte[] other = SECRET.clone();
    other[0] = 1;
    assertInvalid(() -> PageTokens.withSecret(other).openLong(query("a", t), 0));
  }

  @Test
  void handMadeOrGarbageOrHugeTokens_rejected() {
    // the format before version 1: base64 of the position itself
    String old = Base64.getUrlEncoder().withoutPadding().encodeToString("ns\0name".getBytes(StandardCharsets.UTF_8));
    assertInvalid(() -> tokens.openString(query("a", old), null));
    assertInvalid(() -> tokens.openString(query("a", "not base64 !"), null));
    assertInvalid(() -> tokens.openString(query("a", "A".repeat(5000)), null));
    assertInvalid(() -> tokens.openString(query("a", "AQ"), null));
  }

  @Test
  void secretInTheDatabase_madeOnce_sharedByReplicas() throws Exception {
    try (EmbeddedPostgres pg = EmbeddedPostgres.builder().start()) {
      DataSource ds = pg.getPostgresDatabase();
      try (Connection c = ds.getConnection()) {
        c.createStatement().execute("CREATE TABLE page_token_secret (id SMALLINT PRIMARY KEY CHECK (id = 1), "
            + "secret BYTEA NOT NULL CHECK (octet_length(secret) >= 32), "
            + "created_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      }
      PageTokens one = PageTokens.backedBy(ds);
      PageTokens two = PageTokens.backedBy(ds);
      String t = one.issue(query("a", ""), 7L);
      assertEquals(7L, two.openLong(query("a", t), 0));
      assertArrayEquals(PageTokens.loadOrCreate(ds), PageTokens.loadOrCreate(ds));
      assertInvalid(() -> tokens.openLong(query("a", t), 0));
    }
  }
}

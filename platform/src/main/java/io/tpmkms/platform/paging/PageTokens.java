package io.tpmkms.platform.paging;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.sql.DataSource;

/**
 * The page tokens of every tpmkms list RPC: authenticated, bound to the query
 * (ADR 0018, docs/api.md#paging).
 *
 * <p>Format, version 1: {@code base64url-nopad( 0x01 || tag[16] || position )}
 * where {@code tag} is the first 16 bytes of HMAC-SHA256 under the
 * service's page-token secret over
 * {@code "tpmkms-page-token" || 0x01 || request type name || 0x00 ||
 * SHA-256(query) || position}. The query is the request with
 * {@code page_token} and {@code page_size} cleared, serialized
 * deterministically, so a token answers only the RPC and the filters it was
 * issued for (page_size may change between pages). The position (after the
 * last item returned) is the service's own, opaque to callers. A token that
 * is not base64url, too long, of another version, or whose tag does not match
 * (compared in constant time) is {@link InvalidPageToken}
 * (INVALID_ARGUMENT {@value #INVALID_PAGE_TOKEN}).
 *
 * <p>The secret is per deployment, not per replica: 32 random bytes made on
 * the first start and kept in the service's own database (table
 * {@code page_token_secret}, created by its migrations), so every replica
 * accepts the others' tokens. Thread-safe; the secret is read once, on first
 * use.
 */
public final class PageTokens {
  public static final String INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN";
  static final byte VERSION = 1;
  static final int TAG_BYTES = 16;
  /** Longer tokens are refused before decoding; ours are well below. */
  static final int MAX_TOKEN_CHARS = 1024;
  private static final byte[] LABEL = "tpmkms-page-token".getBytes(StandardCharsets.US_ASCII);

  /** A page token this service did not issue for this query. */
  public static final class InvalidPageToken extends ServiceException {
    InvalidPageToken() {
      super(ErrorCode.INVALID_ARGUMENT, io.tpmkms.platform.error.CommonReason.INVALID_PAGE_TOKEN,
          "page_token is not one this service issued for this RPC and these filters (a page token only continues"
              + " the query it came from, with the same filters); list again without a token", Map.of(), null);
    }
  }

  private final DataSource source;
  private volatile SecretKeySpec key;

  private PageTokens(DataSource source, byte[] secret) {
    this.source = source;
    if (secret != null) this.key = keyOf(secret);
  }

  /** With a fixed secret (tests, tools). */
  public static PageTokens withSecret(byte[] secret) {
    return new PageTokens(null, secret);
  }

  /** With the deployment's secret from {@code page_token_secret} in this database, made there on first use. */
  public static PageTokens backedBy(DataSource source) {
    return new PageTokens(source, null);
  }

  /** The token for the next page of {@code request}'s query, after {@code position}. */
  public String issue(Message request, byte[] position) {
    byte[] tag = tag(request, position);
    ByteBuffer b = ByteBuffer.allocate(1 + TAG_BYTES + position.length);
    b.put(VERSION).put(tag).put(position);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b.array());
  }

  public String issue(Message request, long position) {
    return issue(request, ByteBuffer.allocate(8).putLong(position).array());
  }

  public String issue(Message request, String position) {
    return issue(request, position.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The position in the request's {@code page_token}, or null when it has
   * none (the first page).
   *
   * @throws InvalidPageToken if the token was not issued by this deployment for this query
   */
  public byte[] open(Message request) {
    String token = pageToken(request);
    if (token.isEmpty()) return null;
    if (token.length() > MAX_TOKEN_CHARS) throw new InvalidPageToken();
    byte[] raw;
    try {
      raw = Base64.getUrlDecoder().decode(token);
    } catch (IllegalArgumentException e) {
      throw new InvalidPageToken();
    }
    if (raw.length < 1 + TAG_BYTES || raw[0] != VERSION) throw new InvalidPageToken();
    byte[] position = Arrays.copyOfRange(raw, 1 + TAG_BYTES, raw.length);
    byte[] expected = tag(request, position);
    if (!MessageDigest.isEqual(expected, Arrays.copyOfRange(raw, 1, 1 + TAG_BYTES))) throw new InvalidPageToken();
    return position;
  }

  /** {@link #open} of a position issued as a long; {@code first} when there is no token. */
  public long openLong(Message request, long first) {
    byte[] p = open(request);
    if (p == null) return first;
    if (p.length != 8) throw new InvalidPageToken();
    return ByteBuffer.wrap(p).getLong();
  }

  /** {@link #open} of a position issued as a string; {@code first} when there is no token. */
  public String openString(Message request, String first) {
    byte[] p = open(request);
    return p == null ? first : new String(p, StandardCharsets.UTF_8);
  }

  private byte[] tag(Message request, byte[] position) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(key());
      mac.update(LABEL);
      mac.update(VERSION);
      mac.update(request.getDescriptorForType().getFullName().getBytes(StandardCharsets.UTF_8));
      mac.update((byte) 0);
      mac.update(queryDigest(request));
      mac.update(position);
      return Arrays.copyOf(mac.doFinal(), TAG_BYTES);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  /** SHA-256 of the request without its page_token and page_size, serialized deterministically. */
  static byte[] queryDigest(Message request) {
    Message.Builder b = request.toBuilder();
    for (String name : new String[] {"page_token", "page_size"}) {
      FieldDescriptor f = request.getDescriptorForType().findFieldByName(name);
      if (f != null) b.clearField(f);
    }
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      CodedOutputStream out = CodedOutputStream.newInstance(bytes);
      out.useDeterministicSerialization();
      b.build().writeTo(out);
      out.flush();
      return MessageDigest.getInstance("SHA-256").digest(bytes.toByteArray());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }

  private static String pageToken(Message request) {
    FieldDescriptor f = request.getDescriptorForType().findFieldByName("page_token");
    if (f == null || f.getJavaType() != FieldDescriptor.JavaType.STRING) {
      throw new IllegalArgumentException(request.getDescriptorForType().getFullName() + " has no page_token");
    }
    return (String) request.getField(f);
  }

  private SecretKeySpec key() {
    SecretKeySpec k = key;
    if (k != null) return k;
    synchronized (this) {
      if (key == null) key = keyOf(loadOrCreate(source));
      return key;
    }
  }

  private static SecretKeySpec keyOf(byte[] secret) {
    if (secret.length < 32) throw new IllegalArgumentException("a page-token secret has at least 32 bytes");
    return new SecretKeySpec(secret, "HmacSHA256");
  }

  /**
   * The secret in {@code page_token_secret} (one row, id 1); the first
   * replica to ask makes it, the others read the same row.
   */
  static byte[] loadOrCreate(DataSource source) {
    byte[] fresh = new byte[32];
    new SecureRandom().nextBytes(fresh);
    try (Connection c = source.getConnection()) {
      try (PreparedStatement insert = c.prepareStatement(
          "INSERT INTO page_token_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING")) {
        insert.setBytes(1, fresh);
        insert.executeUpdate();
      }
      try (PreparedStatement select = c.prepareStatement("SELECT secret FROM page_token_secret WHERE id = 1");
          ResultSet rs = select.executeQuery()) {
        if (!rs.next()) throw new IllegalStateException("page_token_secret has no row");
        return rs.getBytes(1);
      }
    } catch (SQLException e) {
      throw new IllegalStateException("cannot read the page-token secret", e);
    } finally {
      Arrays.fill(fresh, (byte) 0);
    }
  }
}

package io.tpmkms.client;

import com.google.protobuf.ByteString;
import io.tpmkms.proto.key.v1.GenerateDataKeyResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Envelope encryption with a tpmkms key (docs/clients.md): data is encrypted here with AES-256-GCM
 * under a data key that tpmkms generated and wrapped ({@code GenerateDataKey}); only the wrapped
 * data key travels with the ciphertext, and only tpmkms can unwrap it ({@code Decrypt}). Large
 * payloads never go to the service, and one service call serves many messages:
 *
 * <ul>
 *   <li>a data key encrypts at most {@code maxUses} messages and lives at most {@code maxAge}
 *       (defaults 100,000 and 5 minutes; random 96-bit GCM nonces stay far below the 2^32 bound);
 *   <li>unwrapped data keys are cached for decryption, at most {@code cacheSize} of them, each at
 *       most {@code maxAge} (default 1,000): a key revoked or disabled in tpmkms stops decrypting here
 *       within {@code maxAge}.
 * </ul>
 *
 * <p>Format (version 1): {@code 0x01 | uint16 n | wrapped data key (n bytes, a tpmkms ciphertext) |
 * nonce (12) | AES-GCM ciphertext and tag (16)}; the GCM associated data is the header (the first
 * {@code 3 + n} bytes) followed by the caller's associated data, so neither can be swapped. The data
 * key is generated with the associated data {@code "tpmkms-envelope-v1"}.
 */
public final class EnvelopeEncryption {
  static final byte VERSION = 1;
  static final byte[] DATA_KEY_AAD = "tpmkms-envelope-v1".getBytes(StandardCharsets.US_ASCII);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final TpmkmsClient client;
  private final String key;
  private final Duration maxAge;
  private final long maxUses;
  private final int cacheSize;
  private final Clock clock;

  private DataKey current;
  private final Map<ByteString, DataKey> unwrapped;
  private long serviceCalls;

  private static final class DataKey {
    final SecretKeySpec key;
    final byte[] wrapped;
    final Instant created;
    long uses;

    DataKey(byte[] plaintext, byte[] wrapped, Instant created) {
      this.key = new SecretKeySpec(plaintext, "AES");
      Arrays.fill(plaintext, (byte) 0);
      this.wrapped = wrapped;
      this.created = created;
    }
  }

  private EnvelopeEncryption(TpmkmsClient client, String key, Duration maxAge, long maxUses, int cacheSize,
      Clock clock) {
    this.client = Objects.requireNonNull(client);
    this.key = Objects.requireNonNull(key);
    this.maxAge = maxAge;
    this.maxUses = maxUses;
    this.cacheSize = cacheSize;
    this.clock = clock;
    this.unwrapped = new LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<ByteString, DataKey> eldest) {
        return size() > EnvelopeEncryption.this.cacheSize;
      }
    };
  }

  /** With the defaults: data keys for 5 minutes or 100,000 messages, 1,000 unwrapped keys cached. */
  public static EnvelopeEncryption of(TpmkmsClient client, String key) {
    return new EnvelopeEncryption(client, key, Duration.ofMinutes(5), 100_000, 1_000, Clock.systemUTC());
  }

  /** {@code maxUses} 1 and {@code cacheSize} 0: a service call per message (no data key is reused). */
  public static EnvelopeEncryption of(TpmkmsClient client, String key, Duration maxAge, long maxUses, int cacheSize) {
    if (maxAge.isNegative() || maxUses < 1 || cacheSize < 0) throw new IllegalArgumentException("bad limits");
    return new EnvelopeEncryption(client, key, maxAge, maxUses, cacheSize, Clock.systemUTC());
  }

  static EnvelopeEncryption of(TpmkmsClient client, String key, Duration maxAge, long maxUses, int cacheSize,
      Clock clock) {
    return new EnvelopeEncryption(client, key, maxAge, maxUses, cacheSize, clock);
  }

  public byte[] encrypt(byte[] plaintext, byte[] aad) {
    DataKey dk = dataKeyForEncryption();
    byte[] nonce = new byte[12];
    RANDOM.nextBytes(nonce);
    ByteBuffer header = ByteBuffer.allocate(3 + dk.wrapped.length);
    header.put(VERSION).putShort((short) dk.wrapped.length).put(dk.wrapped);
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(Cipher.ENCRYPT_MODE, dk.key, new GCMParameterSpec(128, nonce));
      gcm.updateAAD(header.array());
      if (aad != null) gcm.updateAAD(aad);
      byte[] sealed = gcm.doFinal(plaintext);
      return ByteBuffer.allocate(header.capacity() + 12 + sealed.length).put(header.array()).put(nonce).put(sealed)
          .array();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM is not available", e);
    }
  }

  /**
   * @throws IllegalArgumentException if the ciphertext is not one of this format or fails
   *     authentication (wrong associated data, altered bytes)
   * @throws TpmkmsException if tpmkms refuses to unwrap its data key (e.g. the version is disabled)
   */
  public byte[] decrypt(byte[] ciphertext, byte[] aad) {
    if (ciphertext.length < 3 + 1 + 12 + 16 || ciphertext[0] != VERSION) {
      throw new IllegalArgumentException("not a tpmkms envelope (version 1)");
    }
    int n = ((ciphertext[1] & 0xff) << 8) | (ciphertext[2] & 0xff);
    if (n == 0 || ciphertext.length < 3 + n + 12 + 16) throw new IllegalArgumentException("truncated envelope");
    byte[] wrapped = Arrays.copyOfRange(ciphertext, 3, 3 + n);
    DataKey dk = dataKeyForDecryption(wrapped);
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(Cipher.DECRYPT_MODE, dk.key, new GCMParameterSpec(128, ciphertext, 3 + n, 12));
      gcm.updateAAD(ciphertext, 0, 3 + n);
      if (aad != null) gcm.updateAAD(aad);
      return gcm.doFinal(ciphertext, 3 + n + 12, ciphertext.length - 3 - n - 12);
    } catch (javax.crypto.AEADBadTagException e) {
      throw new IllegalArgumentException("the envelope does not authenticate (altered, or other associated data)", e);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM is not available", e);
    }
  }

  /** Calls made to tpmkms so far (GenerateDataKey and Decrypt): what the caches save. */
  public synchronized long serviceCalls() {
    return serviceCalls;
  }

  private synchronized DataKey dataKeyForEncryption() {
    Instant now = clock.instant();
    if (current == null || current.uses >= maxUses || !now.isBefore(current.created.plus(maxAge))) {
      GenerateDataKeyResponse r = client.generateDataKey(key, 32, DATA_KEY_AAD);
      serviceCalls++;
      current = new DataKey(r.getPlaintext().toByteArray(), r.getCiphertext().toByteArray(), now);
      if (cacheSize > 0) unwrapped.put(ByteString.copyFrom(current.wrapped), current);
    }
    current.uses++;
    return current;
  }

  private DataKey dataKeyForDecryption(byte[] wrapped) {
    ByteString id = ByteString.copyFrom(wrapped);
    Instant now = clock.instant();
    synchronized (this) {
      DataKey cached = unwrapped.get(id);
      if (cached != null && now.isBefore(cached.created.plus(maxAge))) return cached;
      if (cached != null) unwrapped.remove(id);
    }
    byte[] plaintext = client.decrypt(key, wrapped, DATA_KEY_AAD); // outside the lock: a slow call
    DataKey dk = new DataKey(plaintext, wrapped, now);
    synchronized (this) {
      serviceCalls++;
      if (cacheSize > 0) unwrapped.put(id, dk);
    }
    return dk;
  }
}

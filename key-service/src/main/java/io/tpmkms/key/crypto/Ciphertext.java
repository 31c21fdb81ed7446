package io.tpmkms.key.crypto;

import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * The self-describing ciphertext every Encrypt returns (docs/api.md):
 *
 * <pre>
 *   0x01 (format) | key version (uint32, big-endian) | backend payload
 * </pre>
 *
 * For AES_256_GCM the software payload is nonce(12) | ciphertext | tag(16),
 * the caller's additional authenticated data being the GCM AAD. Decrypt reads
 * the version from the header, so rotation never breaks old ciphertexts.
 */
public record Ciphertext(int version, byte[] payload) {
  public static final byte FORMAT_V1 = 0x01;
  public static final int HEADER_LENGTH = 5;

  public byte[] encode() {
    return ByteBuffer.allocate(HEADER_LENGTH + payload.length)
        .put(FORMAT_V1).putInt(version).put(payload).array();
  }

  /** @throws ServiceException INVALID_ARGUMENT (CIPHERTEXT_INVALID) for anything not in the format */
  public static Ciphertext decode(byte[] bytes) {
    if (bytes.length <= HEADER_LENGTH) {
      throw ServiceException.invalid(KeyReason.CIPHERTEXT_INVALID, "ciphertext is too short");
    }
    if (bytes[0] != FORMAT_V1) {
      throw ServiceException.invalid(KeyReason.CIPHERTEXT_INVALID, "ciphertext has an unknown format");
    }
    int version = ByteBuffer.wrap(bytes, 1, 4).getInt();
    if (version <= 0) {
      throw ServiceException.invalid(KeyReason.CIPHERTEXT_INVALID, "ciphertext names no valid key version");
    }
    return new Ciphertext(version, Arrays.copyOfRange(bytes, HEADER_LENGTH, bytes.length));
  }
}

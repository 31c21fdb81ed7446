package io.tpmkms.client.tink;

import com.google.crypto.tink.Aead;
import com.google.crypto.tink.KmsClient;
import io.tpmkms.client.TpmkmsClient;
import io.tpmkms.client.TpmkmsException;
import java.security.GeneralSecurityException;
import java.util.Objects;

/**
 * Tink's {@link KmsClient} for tpmkms keys, named {@code tpmkms://NAMESPACE/NAME}: the {@link Aead} it
 * returns encrypts and decrypts with the key service (the key never leaves tpmkms), so Tink's
 * {@code KmsEnvelopeAead} and {@code KmsAeadKeyManager} work unchanged.
 *
 * <pre>{@code
 * KmsClient kms = new TpmkmsKmsClient(client);            // per instance; not Tink's global registry
 * Aead remote = kms.getAead("tpmkms://payments/cards");
 * Aead envelope = KmsEnvelopeAead.create(PredefinedAeadParameters.AES256_GCM, remote);
 * }</pre>
 *
 * <p>Credentials belong to the {@link TpmkmsClient} (its {@code TokenSource}):
 * {@link #withCredentials} and {@link #withDefaultCredentials} change nothing.
 */
public final class TpmkmsKmsClient implements KmsClient {
  public static final String PREFIX = "tpmkms://";

  private final TpmkmsClient client;
  private final String boundKey;

  /** Supports every {@code tpmkms://} key. */
  public TpmkmsKmsClient(TpmkmsClient client) {
    this(client, null);
  }

  /** Supports only {@code keyUri} (Tink's convention for a client bound to one key). */
  public TpmkmsKmsClient(TpmkmsClient client, String keyUri) {
    this.client = Objects.requireNonNull(client);
    if (keyUri != null) keyName(keyUri);
    this.boundKey = keyUri;
  }

  @Override
  public boolean doesSupport(String keyUri) {
    if (keyUri == null || !keyUri.startsWith(PREFIX)) return false;
    return boundKey == null || boundKey.equals(keyUri);
  }

  @Override
  public KmsClient withCredentials(String credentialPath) {
    return this;
  }

  @Override
  public KmsClient withDefaultCredentials() {
    return this;
  }

  @Override
  public Aead getAead(String keyUri) throws GeneralSecurityException {
    if (!doesSupport(keyUri)) {
      throw new GeneralSecurityException("this client does not support " + keyUri + " (expected "
          + (boundKey == null ? PREFIX + "NAMESPACE/NAME" : boundKey) + ")");
    }
    return new RemoteAead(client, keyName(keyUri));
  }

  /** "NAMESPACE/NAME" of {@code tpmkms://NAMESPACE/NAME}. */
  static String keyName(String keyUri) {
    String name = keyUri.startsWith(PREFIX) ? keyUri.substring(PREFIX.length()) : "";
    int slash = name.indexOf('/');
    if (slash <= 0 || slash == name.length() - 1 || name.indexOf('/', slash + 1) >= 0) {
      throw new IllegalArgumentException("a tpmkms key URI is tpmkms://NAMESPACE/NAME, not " + keyUri);
    }
    return name;
  }

  /** Encrypt/Decrypt in the key service; Tink's associated data is the service's. */
  private record RemoteAead(TpmkmsClient client, String key) implements Aead {
    @Override
    public byte[] encrypt(byte[] plaintext, byte[] associatedData) throws GeneralSecurityException {
      try {
        return client.encrypt(key, plaintext, associatedData);
      } catch (TpmkmsException e) {
        throw new GeneralSecurityException("tpmkms Encrypt with " + key + " failed: " + e.getMessage(), e);
      }
    }

    @Override
    public byte[] decrypt(byte[] ciphertext, byte[] associatedData) throws GeneralSecurityException {
      try {
        return client.decrypt(key, ciphertext, associatedData);
      } catch (TpmkmsException e) {
        throw new GeneralSecurityException("tpmkms Decrypt with " + key + " failed: " + e.getMessage(), e);
      }
    }
  }
}

package io.tpmkms.client.tink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.Aead;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.KmsEnvelopeAead;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.tpmkms.client.TpmkmsClient;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import org.junit.jupiter.api.Test;

/** URI handling and Tink's own envelope AEAD through the client (a key service on a socket). */
class TpmkmsKmsClientTest {
  @Test
  void uris() throws Exception {
    assertEquals("payments/cards", TpmkmsKmsClient.keyName("tpmkms://payments/cards"));
    for (String bad : new String[] {"tpmkms://payments", "tpmkms:///cards", "tpmkms://a/b/c", "tpmkms://a/",
        "gcp-kms://x/y"}) {
      assertThrows(IllegalArgumentException.class, () -> TpmkmsKmsClient.keyName(bad), bad);
    }
    try (TpmkmsClient c = TpmkmsClient.builder().target("127.0.0.1:1").build()) {
      TpmkmsKmsClient any = new TpmkmsKmsClient(c);
      assertTrue(any.doesSupport("tpmkms://a/b"));
      assertFalse(any.doesSupport("aws-kms://arn"));
      TpmkmsKmsClient bound = new TpmkmsKmsClient(c, "tpmkms://a/b");
      assertTrue(bound.doesSupport("tpmkms://a/b"));
      assertFalse(bound.doesSupport("tpmkms://a/c"));
      assertThrows(GeneralSecurityException.class, () -> bound.getAead("tpmkms://a/c"));
    }
  }

  @Test
  void tinksEnvelopeAead_roundTrip_throughTheKeyService() throws Exception {
    AeadConfig.register();
    try (var service = new io.tpmkms.client.FakeKeyServiceAccess(); TpmkmsClient c = service.client()) {
      Aead remote = new TpmkmsKmsClient(c).getAead("tpmkms://t/k");
      Aead envelope = KmsEnvelopeAead.create(PredefinedAeadParameters.AES256_GCM, remote);
      byte[] pt = "tink through tpmkms".getBytes(StandardCharsets.UTF_8);
      byte[] ct = envelope.encrypt(pt, "ad".getBytes(StandardCharsets.UTF_8));
      assertArrayEquals(pt, envelope.decrypt(ct, "ad".getBytes(StandardCharsets.UTF_8)));
      assertThrows(GeneralSecurityException.class, () -> envelope.decrypt(ct, "other".getBytes(StandardCharsets.UTF_8)));
      assertEquals(3, service.calls(), "Encrypt of the DEK, Decrypt of it; the failing decrypt fails locally or remotely");
    }
  }
}

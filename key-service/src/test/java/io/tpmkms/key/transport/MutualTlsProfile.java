package io.tpmkms.key.transport;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** The key service's gRPC port with TLS 1.3 and required client certificates, files re-read every 200 ms. */
public class MutualTlsProfile implements QuarkusTestProfile {
  @Override
  public Map<String, String> getConfigOverrides() {
    return Map.of(
        "tpmkms.tls.server.cert-file", TlsFiles.SERVER_CERT.toString(),
        "tpmkms.tls.server.key-file", TlsFiles.SERVER_KEY.toString(),
        "tpmkms.tls.server.client-ca-file", TlsFiles.CA.toString(),
        "tpmkms.tls.server.client-auth", "required",
        "tpmkms.tls.reload-interval", "200ms");
  }
}

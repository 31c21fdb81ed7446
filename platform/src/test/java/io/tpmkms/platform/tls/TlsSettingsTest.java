package io.tpmkms.platform.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Quarkus switches derived from tpmkms.tls.server.*, and the host of a gRPC target. */
class TlsSettingsTest {
  private static SmallRyeConfig config(Map<String, String> props) {
    return new SmallRyeConfigBuilder()
        .withSources(new PropertiesConfigSource(props, "test", 250))
        .withSources(new TlsConfigSourceFactory())
        .build();
  }

  @Test
  void noCertificate_changesNothing() {
    SmallRyeConfig c = config(Map.of("quarkus.grpc.server.plain-text", "true"));
    assertEquals("true", c.getRawValue("quarkus.grpc.server.plain-text"));
    assertTrue(c.getOptionalValue("quarkus.grpc.server.ssl.client-auth", String.class).isEmpty());
  }

  @Test
  void certificate_turnsPlaintextOff_andMapsClientAuthAndProtocols() {
    SmallRyeConfig c = config(Map.of("tpmkms.tls.server.cert-file", "/etc/tls/tls.crt",
        "tpmkms.tls.server.client-auth", "optional", "tpmkms.tls.server.protocols", "TLSv1.3,TLSv1.2",
        "quarkus.grpc.server.plain-text", "true"));
    assertEquals("false", c.getRawValue("quarkus.grpc.server.plain-text"), "above application.properties");
    assertEquals("REQUEST", c.getRawValue("quarkus.grpc.server.ssl.client-auth"));
    assertEquals("TLSv1.3,TLSv1.2", c.getRawValue("quarkus.grpc.server.ssl.protocols"));
    assertEquals("REQUIRED", config(Map.of("tpmkms.tls.server.cert-file", "x", "tpmkms.tls.server.client-auth",
        "required")).getRawValue("quarkus.grpc.server.ssl.client-auth"));
    assertEquals("NONE", config(Map.of("tpmkms.tls.server.cert-file", "x"))
        .getRawValue("quarkus.grpc.server.ssl.client-auth"));
    assertEquals("TLSv1.3", config(Map.of("tpmkms.tls.server.cert-file", "x"))
        .getRawValue("quarkus.grpc.server.ssl.protocols"));
  }

  @Test
  void hostOfTarget() {
    assertEquals("policy.tpmkms.svc", ServiceChannels.host("policy.tpmkms.svc:9092"));
    assertEquals("::1", ServiceChannels.host("[::1]:9092"));
    assertEquals("10.0.0.7", ServiceChannels.host("dns:///10.0.0.7:9092"));
    assertTrue(ServerTls.isLoopback("127.0.0.1"));
    assertTrue(ServerTls.isLoopback("::1"));
    assertTrue(ServerTls.isLoopback("localhost"));
    assertFalse(ServerTls.isLoopback("0.0.0.0"));
    assertFalse(ServerTls.isLoopback("no-such-host.invalid"));
  }
}

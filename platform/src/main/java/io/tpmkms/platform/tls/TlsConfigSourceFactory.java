package io.tpmkms.platform.tls;

import io.smallrye.config.ConfigSourceContext;
import io.smallrye.config.ConfigSourceFactory;
import io.smallrye.config.ConfigValue;
import io.smallrye.config.common.MapBackedConfigSource;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.eclipse.microprofile.config.spi.ConfigSource;

/**
 * Derives the Quarkus gRPC server's TLS switches from {@code tpmkms.tls.server.*}, so that one
 * setting (a certificate file) turns TLS on: {@code quarkus.grpc.server.plain-text=false}, its
 * client authentication and its protocols. The certificate itself is not given to Quarkus (which
 * reads it once): {@link ServerTls} hands the gRPC server a key manager that reloads it.
 * Ordinal 275: above application.properties, below environment variables and system properties.
 */
public final class TlsConfigSourceFactory implements ConfigSourceFactory {
  @Override
  public Iterable<ConfigSource> getConfigSources(ConfigSourceContext context) {
    ConfigValue cert = context.getValue("tpmkms.tls.server.cert-file");
    if (cert == null || cert.getValue() == null || cert.getValue().isBlank()) return List.of();
    Map<String, String> derived = new HashMap<>();
    derived.put("quarkus.grpc.server.plain-text", "false");
    derived.put("quarkus.grpc.server.alpn", "true");
    ConfigValue auth = context.getValue("tpmkms.tls.server.client-auth");
    String mode = auth == null || auth.getValue() == null ? "off" : auth.getValue().trim().toLowerCase();
    derived.put("quarkus.grpc.server.ssl.client-auth", switch (mode) {
      case "required" -> "REQUIRED";
      case "optional" -> "REQUEST";
      default -> "NONE";
    });
    ConfigValue protocols = context.getValue("tpmkms.tls.server.protocols");
    derived.put("quarkus.grpc.server.ssl.protocols",
        protocols == null || protocols.getValue() == null ? "TLSv1.3" : protocols.getValue());
    return List.of(new MapBackedConfigSource("tpmkms TLS settings (derived from tpmkms.tls.server.*)", derived, 275) {});
  }

  @Override
  public OptionalInt getPriority() {
    return OptionalInt.of(275);
  }
}

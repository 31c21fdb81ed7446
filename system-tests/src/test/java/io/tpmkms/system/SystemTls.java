package io.tpmkms.system;

import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.tpmkms.tls.ClientTls;
import io.tpmkms.tls.DevPki;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Transport security of the system tests: every packaged service they start serves TLS 1.3 and
 * requires a client certificate (mutual TLS), calls the others the same way, and the tests'
 * own clients present one too: what a cluster deployment looks like (docs/operations.md).
 * One development CA per test JVM under target/system-tls.
 */
final class SystemTls {
  static final Path DIR = Path.of("target/system-tls").toAbsolutePath();
  static final Path CA = DevPki.ensureDevelopmentSet(DIR,
      List.of("key-service", "policy-service", "audit-service", "system-test"));

  private SystemTls() {}

  /** The TLS settings of the service {@code name} (key-service, policy-service, audit-service). */
  static Map<String, String> env(String name) {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("TPMKMS_TLS_SERVER_CERT_FILE", DIR.resolve(name + ".crt").toString());
    env.put("TPMKMS_TLS_SERVER_KEY_FILE", DIR.resolve(name + ".key").toString());
    env.put("TPMKMS_TLS_SERVER_CLIENT_CA_FILE", CA.toString());
    env.put("TPMKMS_TLS_SERVER_CLIENT_AUTH", "required");
    env.put("TPMKMS_TLS_CLIENT_CA_FILE", CA.toString());
    return env;
  }

  /** {@code settings} plus the TLS settings of the service {@code name}. */
  static Map<String, String> with(Map<String, String> settings, String name) {
    Map<String, String> env = new LinkedHashMap<>(settings);
    env.putAll(env(name));
    return env;
  }

  /** How the tests connect: TLS verified against the CA, with the test's client certificate. */
  static ClientTls client() {
    return ClientTls.verifiedBy(CA).withClientCertificate(DIR.resolve("system-test.crt"),
        DIR.resolve("system-test.key"));
  }

  /** A channel to a service under test on this machine, over mutual TLS. */
  static ManagedChannel channel(int port) {
    return Grpc.newChannelBuilderForAddress("localhost", port, client().credentials(null))
        .maxInboundMessageSize(32 << 20).build();
  }
}

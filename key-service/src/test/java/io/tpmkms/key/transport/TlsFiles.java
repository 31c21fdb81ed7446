package io.tpmkms.key.transport;

import io.tpmkms.tls.DevPki;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * The certificates of the transport tests, made once per test JVM under target/tls-test: a CA
 * that signs the server's certificate (for "localhost" only, so that 127.0.0.1 is a wrong host
 * name) and a client's; another CA with its own client; an expired server certificate.
 */
final class TlsFiles {
  static final Path DIR = Path.of("target/tls-test").toAbsolutePath();
  static final Path CA = DIR.resolve("ca.crt");
  static final Path SERVER_CERT = DIR.resolve("server.crt");
  static final Path SERVER_KEY = DIR.resolve("server.key");
  static final Path CLIENT_CERT = DIR.resolve("client.crt");
  static final Path CLIENT_KEY = DIR.resolve("client.key");
  static final Path OTHER_CA = DIR.resolve("other-ca.crt");
  static final Path OTHER_CLIENT_CERT = DIR.resolve("other-client.crt");
  static final Path OTHER_CLIENT_KEY = DIR.resolve("other-client.key");

  static final DevPki.Authority AUTHORITY;

  static {
    AUTHORITY = DevPki.newAuthority("tpmkms test CA", Duration.ofDays(2));
    AUTHORITY.writeCertificate(CA);
    AUTHORITY.issue(List.of("localhost"), Duration.ofDays(1)).write(SERVER_CERT, SERVER_KEY);
    AUTHORITY.issue(List.of("test-client"), Duration.ofDays(1)).write(CLIENT_CERT, CLIENT_KEY);
    DevPki.Authority other = DevPki.newAuthority("another CA", Duration.ofDays(2));
    other.writeCertificate(OTHER_CA);
    other.issue(List.of("test-client"), Duration.ofDays(1)).write(OTHER_CLIENT_CERT, OTHER_CLIENT_KEY);
  }

  /** A fresh server certificate for "localhost" from the test CA, valid from {@code from} to {@code to}. */
  static DevPki.Issued server(Instant from, Instant to) {
    return AUTHORITY.issue(List.of("localhost"), from, to);
  }

  private TlsFiles() {}
}

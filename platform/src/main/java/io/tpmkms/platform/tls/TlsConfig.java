package io.tpmkms.platform.tls;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Transport security of a tpmkms service (docs/operations.md, "TLS"; ADR 0024): the certificate
 * its gRPC server serves, whether callers must present one (mutual TLS), and how it verifies the
 * services it calls. Files are PEM, keys PKCS#8 (PKCS#1/SEC1 accepted); all of them are re-read
 * when they change, every {@link #reloadInterval()}.
 */
@ConfigMapping(prefix = "tpmkms.tls")
public interface TlsConfig {

  /** Whether callers must present a certificate signed by {@link Server#clientCaFile()}. */
  enum ClientAuth {
    /** Handshakes without a valid client certificate fail. */
    REQUIRED,
    /** A client certificate is asked for and verified when given; callers without one are served. */
    OPTIONAL,
    /** No client certificate is asked for. */
    OFF
  }

  Server server();

  Client client();

  /** How often certificate, key and CA files are checked for changes (they are compared by content). */
  @WithDefault("10s")
  Duration reloadInterval();

  /**
   * Allows plaintext where it would be refused: a gRPC server on a non-loopback address without a
   * certificate, a client of a non-loopback service without TLS. A warning is logged at start-up.
   * Never in production: bearer tokens and plaintexts would cross the network in clear.
   */
  @WithDefault("false")
  boolean insecure();

  interface Server {
    /** The server's certificate chain (PEM, leaf first). Set: the gRPC port speaks TLS only. */
    Optional<Path> certFile();

    /** Its private key (PEM). */
    Optional<Path> keyFile();

    /** The CAs that sign client certificates (PEM bundle); required unless client-auth is off. */
    Optional<Path> clientCaFile();

    @WithDefault("off")
    ClientAuth clientAuth();

    /** TLS versions offered: TLSv1.3 only unless TLSv1.2 is added here. */
    @WithDefault("TLSv1.3")
    List<String> protocols();

    /**
     * The TLS implementation of the gRPC server: {@code auto} BoringSSL (netty-tcnative) where its
     * native library loads, the JDK's JSSE otherwise; {@code openssl} BoringSSL or refuse to start;
     * {@code jdk} JSSE (ADR 0027).
     */
    @WithDefault("auto")
    Engine engine();
  }

  /** Which TLS implementation the gRPC server runs. */
  enum Engine {
    AUTO,
    OPENSSL,
    JDK
  }

  interface Client {
    /**
     * The CA bundle the services this one calls (policy, audit) are verified against. Set: calls
     * to them use TLS, checking the certificate's chain and host name.
     */
    Optional<Path> caFile();

    /**
     * TLS to the other services even without {@link #caFile()} (verified against the JVM's trust
     * store, for certificates from a public CA). Default: TLS when a CA file is set.
     */
    Optional<Boolean> enabled();

    /**
     * The client certificate this service presents to the services it calls (mutual TLS; the
     * workload's identity). Default: the server certificate ({@code tpmkms.tls.server.cert-file}),
     * when there is one: one certificate per workload, with server and client authentication.
     */
    Optional<Path> certFile();

    /** Its private key; default: {@code tpmkms.tls.server.key-file} when the certificate defaults too. */
    Optional<Path> keyFile();
  }
}

package io.tpmkms.tls;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.TlsChannelCredentials;
import java.nio.file.Path;
import java.util.Optional;

/**
 * How a gRPC client reaches a tpmkms service: plaintext, or TLS that verifies the server's
 * certificate against a CA bundle (or the JVM's default trust store when none is given) and its
 * host name against the target's, optionally presenting a client certificate (mutual TLS).
 * Used by the services' own clients (policy, audit), the CLI, the benchmarks and the tests, so
 * they all verify servers the same way.
 *
 * @param tls         whether to use TLS at all
 * @param caFile      the CA bundle servers are verified against; empty: the JVM's trust store
 * @param certFile    the client certificate (chain) to present; empty: none
 * @param keyFile     its private key (required with {@code certFile})
 */
public record ClientTls(boolean tls, Optional<Path> caFile, Optional<Path> certFile, Optional<Path> keyFile) {

  public ClientTls {
    if (certFile.isPresent() != keyFile.isPresent()) {
      throw new IllegalArgumentException("a client certificate needs its key and a key needs its certificate: "
          + "give both or neither");
    }
    if (!tls && (caFile.isPresent() || certFile.isPresent())) {
      throw new IllegalArgumentException("a CA file or a client certificate means TLS; plaintext takes neither");
    }
  }

  public static ClientTls plaintext() {
    return new ClientTls(false, Optional.empty(), Optional.empty(), Optional.empty());
  }

  /** TLS verified against {@code caFile}, without a client certificate. */
  public static ClientTls verifiedBy(Path caFile) {
    return new ClientTls(true, Optional.of(caFile), Optional.empty(), Optional.empty());
  }

  /** The same, presenting {@code certFile}/{@code keyFile}. */
  public ClientTls withClientCertificate(Path certFile, Path keyFile) {
    return new ClientTls(true, caFile, Optional.of(certFile), Optional.of(keyFile));
  }

  /**
   * The channel credentials; with a reloader, the CA bundle and the client certificate are
   * re-read when their files change (long-lived service channels), without one they are read
   * once (a CLI command). Throws {@link InvalidTlsFileException} for unusable files.
   */
  public ChannelCredentials credentials(CertificateReloader reloader) {
    if (!tls) return InsecureChannelCredentials.create();
    TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
    if (caFile.isPresent()) {
      ReloadingTrustManager trust = new ReloadingTrustManager(caFile.get());
      b.trustManager(reloader == null ? trust : reloader.watch(trust));
    }
    if (certFile.isPresent()) {
      ReloadingKeyManager keys = new ReloadingKeyManager(certFile.get(), keyFile.get());
      b.keyManager(reloader == null ? keys : reloader.watch(keys));
    }
    return b.build();
  }

  /**
   * The same security as a JSSE context (for clients that take an {@code SSLSocketFactory}, such
   * as the CLI's OkHttp transport, whose credentials-based TLS offers TLS 1.2 only). Host names
   * are the client's to verify. Read once; throws {@link InvalidTlsFileException}.
   */
  public javax.net.ssl.SSLContext sslContext() {
    if (!tls) throw new IllegalStateException("plaintext has no TLS context");
    try {
      javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLS");
      ctx.init(certFile.isPresent()
              ? new javax.net.ssl.KeyManager[] {new ReloadingKeyManager(certFile.get(), keyFile.get())} : null,
          caFile.isPresent() ? new javax.net.ssl.TrustManager[] {new ReloadingTrustManager(caFile.get())} : null,
          null);
      return ctx;
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException("the JVM has no TLS", e);
    }
  }

  /** For logs and messages: "TLS (CA /etc/tpmkms/ca.crt, client certificate /etc/...)" or "plaintext". */
  public String describe() {
    if (!tls) return "plaintext";
    return "TLS (CA " + caFile.map(Path::toString).orElse("the JVM's trust store")
        + certFile.map(c -> ", client certificate " + c).orElse("") + ")";
  }
}

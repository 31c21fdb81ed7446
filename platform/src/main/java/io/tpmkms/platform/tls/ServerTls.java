package io.tpmkms.platform.tls;

import io.quarkus.grpc.api.ServerBuilderCustomizer;
import io.quarkus.grpc.runtime.config.GrpcServerConfiguration;
import io.quarkus.runtime.ShutdownEvent;
import io.tpmkms.tls.CertificateReloader;
import io.tpmkms.tls.ClientTls;
import io.tpmkms.tls.ReloadingKeyManager;
import io.tpmkms.tls.ReloadingTrustManager;
import io.vertx.core.net.JdkSSLEngineOptions;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.OpenSSLEngineOptions;
import io.vertx.core.net.TrustOptions;
import io.vertx.grpc.VertxServerBuilder;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.Optional;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Transport security of this service's gRPC server and of its clients (ADR 0024).
 *
 * <p>Server: with {@code tpmkms.tls.server.cert-file} the gRPC port speaks TLS only (1.3 unless
 * 1.2 is allowed), serving a certificate that is re-read when its files change (cert-manager,
 * Kubernetes Secrets) without a restart: new handshakes get the new one, connections and calls in
 * flight are not touched. With a client CA and {@code client-auth} required/optional, callers'
 * certificates are verified against it (mutual TLS). Without a certificate the port is plaintext,
 * which is refused on a non-loopback address unless {@code tpmkms.tls.insecure=true}.
 *
 * <p>Clients: {@link #client()} says how this service reaches the others (policy, audit).
 */
@Singleton
public class ServerTls implements ServerBuilderCustomizer<VertxServerBuilder> {
  private static final Logger LOG = Logger.getLogger(ServerTls.class);

  private final TlsConfig config;
  private final String grpcHost;
  private final CertificateReloader reloader;
  private final ReloadingKeyManager serverIdentity;
  private final ReloadingTrustManager clientCas;
  private final ClientTls client;
  /** Whether the gRPC server's TLS runs on BoringSSL (netty-tcnative) rather than the JDK's JSSE. */
  private final boolean openssl;

  public ServerTls(TlsConfig config,
      @ConfigProperty(name = "quarkus.grpc.server.host", defaultValue = "0.0.0.0") String grpcHost) {
    this.config = config;
    this.grpcHost = grpcHost;
    this.reloader = new CertificateReloader(config.reloadInterval());
    var server = config.server();
    if (server.certFile().isPresent() != server.keyFile().isPresent()) {
      throw new IllegalStateException("tpmkms.tls.server.cert-file and tpmkms.tls.server.key-file go together: "
          + "give both (TLS) or neither (plaintext, loopback only)");
    }
    this.serverIdentity = server.certFile()
        .map(c -> reloader.watch(new ReloadingKeyManager(c, server.keyFile().get()))).orElse(null);
    if (server.clientAuth() != TlsConfig.ClientAuth.OFF) {
      if (serverIdentity == null) {
        throw new IllegalStateException("tpmkms.tls.server.client-auth=" + server.clientAuth().name().toLowerCase()
            + " needs TLS: set tpmkms.tls.server.cert-file and key-file");
      }
      Path ca = server.clientCaFile().orElseThrow(() -> new IllegalStateException(
          "tpmkms.tls.server.client-auth=" + server.clientAuth().name().toLowerCase()
              + " needs tpmkms.tls.server.client-ca-file (the CAs that sign client certificates)"));
      this.clientCas = reloader.watch(new ReloadingTrustManager(ca));
    } else {
      this.clientCas = null;
    }
    for (String p : server.protocols()) {
      if (!p.equals("TLSv1.3") && !p.equals("TLSv1.2")) {
        throw new IllegalStateException("tpmkms.tls.server.protocols: " + p + " is not offered; TLSv1.3 and "
            + "TLSv1.2 are");
      }
    }
    this.client = clientTls(config);
    this.openssl = serverIdentity != null && useOpenssl(server.engine());
    if (serverIdentity != null && !openssl) warmUp();
  }

  /**
   * Whether the server runs BoringSSL: {@code auto} where netty-tcnative's library loads,
   * {@code openssl} or fail, {@code jdk} never.
   */
  private static boolean useOpenssl(TlsConfig.Engine engine) {
    if (engine == TlsConfig.Engine.JDK) return false;
    boolean available;
    Throwable why = null;
    try {
      available = OpenSSLEngineOptions.isAvailable() && OpenSSLEngineOptions.isAlpnAvailable();
      if (!available) why = io.netty.handler.ssl.OpenSsl.unavailabilityCause();
    } catch (Throwable e) {
      available = false;
      why = e;
    }
    if (!available && engine == TlsConfig.Engine.OPENSSL) {
      throw new IllegalStateException("tpmkms.tls.server.engine=openssl but BoringSSL (netty-tcnative) does not "
          + "load on this platform: " + why + "; use auto or jdk", why);
    }
    if (!available) {
      LOG.warnf("TLS engine: BoringSSL (netty-tcnative) does not load here (%s); the JDK's JSSE serves TLS", why);
    }
    return available;
  }

  /**
   * Loads Netty's JDK TLS server context now, on the start-up thread: its first use probes for
   * Bouncy Castle, which takes seconds on a busy machine and would otherwise block an event loop
   * (and log a blocked-thread warning) when the gRPC server starts.
   */
  private static void warmUp() {
    try {
      Class.forName("io.netty.handler.ssl.JdkSslServerContext", true, ServerTls.class.getClassLoader());
    } catch (Throwable e) {
      // only an optimisation
    }
  }

  private static ClientTls clientTls(TlsConfig config) {
    var c = config.client();
    boolean on = c.enabled().orElse(c.caFile().isPresent());
    if (!on) {
      if (c.certFile().isPresent()) {
        throw new IllegalStateException("tpmkms.tls.client.cert-file is set but TLS to the other services is "
            + "off: set tpmkms.tls.client.ca-file (or tpmkms.tls.client.enabled=true)");
      }
      return ClientTls.plaintext();
    }
    Optional<Path> cert = c.certFile().or(() -> config.server().certFile());
    Optional<Path> key = c.certFile().isPresent() ? c.keyFile() : c.keyFile().or(() -> config.server().keyFile());
    if (cert.isPresent() != key.isPresent()) {
      throw new IllegalStateException("tpmkms.tls.client.cert-file and tpmkms.tls.client.key-file go together");
    }
    return new ClientTls(true, c.caFile(), cert, key);
  }

  /** Whether the gRPC server speaks TLS. */
  public boolean enabled() {
    return serverIdentity != null;
  }

  /** "BoringSSL x (netty-tcnative)" or "JDK JSSE"; "plaintext" without TLS. */
  public String engineName() {
    if (serverIdentity == null) return "plaintext";
    return openssl ? io.netty.handler.ssl.OpenSsl.versionString() + " (netty-tcnative)" : "JDK JSSE";
  }

  /** How this service reaches the other tpmkms services. */
  public ClientTls client() {
    return client;
  }

  /** Re-reads changed files at the configured interval (also the client side's files). */
  public CertificateReloader reloader() {
    return reloader;
  }

  /** Whether {@code insecure} plaintext is allowed beyond loopback. */
  public boolean insecure() {
    return config.insecure();
  }

  /**
   * Refuses to start a plaintext gRPC server beyond loopback (a failure while the gRPC server is
   * built is only logged by Quarkus, and the process would run without its port).
   */
  void check(@Observes @jakarta.annotation.Priority(1) io.quarkus.runtime.StartupEvent e) {
    if (serverIdentity == null && !isLoopback(grpcHost)) {
      if (!config.insecure()) {
        throw new IllegalStateException("the gRPC server would listen on " + grpcHost + " in plaintext: bearer "
            + "tokens and data would cross the network in clear. Set tpmkms.tls.server.cert-file and key-file "
            + "(docs/operations.md, TLS), or listen on 127.0.0.1, or accept the risk with tpmkms.tls.insecure=true");
      }
      LOG.warnf("INSECURE: the gRPC server listens on %s in plaintext (tpmkms.tls.insecure=true); tokens and "
          + "data cross the network in clear", grpcHost);
    }
  }

  @Override
  public void customize(GrpcServerConfiguration grpc, VertxServerBuilder builder) {
    if (serverIdentity == null) return;
    var c = serverIdentity.certificate();
    LOG.infof("gRPC server: TLS (%s, %s), certificate '%s' (serial %s, valid until %s), client certificates %s; "
            + "files re-read every %s", String.join(", ", config.server().protocols()), engineName(),
        c.getSubjectX500Principal().getName(), c.getSerialNumber().toString(16), c.getNotAfter().toInstant(),
        switch (config.server().clientAuth()) {
          case REQUIRED -> "required";
          case OPTIONAL -> "verified when given";
          case OFF -> "not asked for";
        }, config.reloadInterval());
    builder.useSsl(options -> {
      options.setSslEngineOptions(openssl ? new OpenSSLEngineOptions() : new JdkSSLEngineOptions());
      options.setKeyCertOptions(KeyCertOptions.wrap(serverIdentity));
      if (clientCas != null) {
        options.setTrustOptions(TrustOptions.wrap(clientCas));
      }
    });
  }

  void stop(@Observes ShutdownEvent e) {
    reloader.close();
  }

  /** Whether {@code host} names a loopback address (127.0.0.0/8, ::1, localhost). */
  public static boolean isLoopback(String host) {
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }
}

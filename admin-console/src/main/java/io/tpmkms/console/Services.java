package io.tpmkms.console;

import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.quarkus.oidc.AccessTokenCredential;
import io.quarkus.runtime.ShutdownEvent;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.tls.CertificateReloader;
import io.tpmkms.tls.ClientTls;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.nio.file.Path;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.jboss.logging.Logger;

/**
 * The console's channels to the three services, and stubs that carry the signed-in person's
 * access token: what a person may do here is exactly what the policy service allows them anywhere.
 */
@Singleton
public class Services {
  private static final Logger LOG = Logger.getLogger(Services.class);
  static final long DEADLINE_SECONDS = 60; // an RSA key on a real TPM takes seconds

  /** How often the TLS files are checked for a change (as the services do by default). */
  static final java.time.Duration RELOAD_INTERVAL = java.time.Duration.ofMinutes(1);

  private final CertificateReloader reloader;
  private final ManagedChannel keys;
  private final ManagedChannel policies;
  private final ManagedChannel audit;

  public Services(ConsoleConfig config) {
    ClientTls tls = config.tls().caFile().filter(f -> !f.isBlank()).map(f -> ClientTls.verifiedBy(Path.of(f)))
        .orElse(ClientTls.plaintext());
    if (config.tls().certFile().isPresent() && config.tls().keyFile().isPresent()) {
      tls = tls.withClientCertificate(Path.of(config.tls().certFile().get()), Path.of(config.tls().keyFile().get()));
    }
    // a renewed CA bundle or client certificate (cert-manager) is picked up without a restart
    reloader = tls.tls() ? new CertificateReloader(RELOAD_INTERVAL) : null;
    ChannelCredentials creds = tls.tls() ? tls.credentials(reloader) : InsecureChannelCredentials.create();
    keys = Grpc.newChannelBuilder(config.keyService(), creds).build();
    policies = Grpc.newChannelBuilder(config.policyService(), creds).build();
    audit = Grpc.newChannelBuilder(config.auditService(), creds).build();
    LOG.infof("calling the key service at %s, the policy service at %s, the audit service at %s over %s",
        config.keyService(), config.policyService(), config.auditService(), tls.describe());
  }

  void stop(@Observes ShutdownEvent e) {
    keys.shutdownNow();
    policies.shutdownNow();
    audit.shutdownNow();
    if (reloader != null) reloader.close();
  }

  public KeyServiceGrpc.KeyServiceBlockingStub keys(AccessTokenCredential token) {
    return KeyServiceGrpc.newBlockingStub(keys).withCallCredentials(bearer(token))
        .withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
  }

  public PolicyServiceGrpc.PolicyServiceBlockingStub policies(AccessTokenCredential token) {
    return PolicyServiceGrpc.newBlockingStub(policies).withCallCredentials(bearer(token))
        .withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
  }

  /**
   * For streams a browser downloads (the audit export): an hour's deadline instead of a minute's;
   * the caller cancels the call when the download ends or breaks.
   */
  public AuditServiceGrpc.AuditServiceBlockingStub auditStream(AccessTokenCredential token) {
    return AuditServiceGrpc.newBlockingStub(audit).withCallCredentials(bearer(token))
        .withDeadlineAfter(1, TimeUnit.HOURS);
  }

  public AuditServiceGrpc.AuditServiceBlockingStub audit(AccessTokenCredential token) {
    return AuditServiceGrpc.newBlockingStub(audit).withCallCredentials(bearer(token))
        .withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
  }

  /** A service's health as its Health/Check says, with the reason it gives when not ready. */
  public record Health(String service, String status, String reason) {
    public boolean serving() {
      return "SERVING".equals(status);
    }
  }

  public Health health(String service) {
    ManagedChannel ch = switch (service) {
      case "key service" -> keys;
      case "policy service" -> policies;
      case "audit service" -> audit;
      default -> throw new IllegalArgumentException(service);
    };
    AtomicReference<Metadata> headers = new AtomicReference<>();
    try {
      var status = HealthGrpc.newBlockingStub(ch)
          .withInterceptors(io.grpc.stub.MetadataUtils.newCaptureMetadataInterceptor(headers, new AtomicReference<>()))
          .withDeadlineAfter(3, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance()).getStatus();
      String reason = headers.get() == null ? null
          : headers.get().get(Metadata.Key.of("tpmkms-not-ready", Metadata.ASCII_STRING_MARSHALLER));
      return new Health(service, status.name(), reason == null ? "" : reason);
    } catch (io.grpc.StatusRuntimeException e) {
      return new Health(service, "UNREACHABLE", Errors.plain(e));
    }
  }

  private static CallCredentials bearer(AccessTokenCredential token) {
    String value = "Bearer " + token.getToken();
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), value);
        applier.apply(m);
      }
    };
  }
}

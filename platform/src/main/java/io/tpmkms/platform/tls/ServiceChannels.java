package io.tpmkms.platform.tls;

import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

/**
 * The channels this service opens to the other tpmkms services (the key service to the policy
 * and audit services, every service's audit forwarder): one place where their transport security
 * is decided ({@link ServerTls#client()}): TLS verifying the server's chain and host name, the
 * workload's client certificate where there is one; plaintext only to loopback (or with
 * {@code tpmkms.tls.insecure=true}).
 */
@Singleton
public class ServiceChannels {
  private static final Logger LOG = Logger.getLogger(ServiceChannels.class);

  private final ServerTls tls;
  private final io.tpmkms.platform.tracing.Tracing tracing;

  public ServiceChannels(ServerTls tls, io.tpmkms.platform.tracing.Tracing tracing) {
    this.tls = tls;
    this.tracing = tracing;
  }

  /**
   * A channel to {@code target} ({@code host:port}) for the {@code purpose} named in messages
   * ("policy service"). Throws when it would be plaintext beyond loopback without
   * {@code tpmkms.tls.insecure}, or when a TLS file cannot be used.
   */
  public ManagedChannel open(String target, String purpose) {
    var client = tls.client();
    if (!client.tls()) {
      String host = host(target);
      if (!ServerTls.isLoopback(host)) {
        if (!tls.insecure()) {
          throw new IllegalStateException("the " + purpose + " at " + target + " would be called in plaintext: "
              + "set tpmkms.tls.client.ca-file (the CA bundle it is verified against), or accept the risk with "
              + "tpmkms.tls.insecure=true");
        }
        LOG.warnf("INSECURE: calling the %s at %s in plaintext (tpmkms.tls.insecure=true)", purpose, target);
      }
    }
    LOG.infof("calling the %s at %s over %s", purpose, target, client.describe());
    var builder = Grpc.newChannelBuilder(target, client.credentials(tls.reloader()));
    if (tracing.enabled()) builder.intercept(tracing.clientInterceptor()); // the trace goes on with the call
    return builder.build();
  }

  /** "host" of "host:port", "[::1]:9090", "dns:///host:port". */
  static String host(String target) {
    String t = target;
    int scheme = t.indexOf(":///");
    if (scheme >= 0) t = t.substring(scheme + 4);
    if (t.startsWith("[")) return t.substring(1, t.indexOf(']'));
    int colon = t.lastIndexOf(':');
    return colon > 0 ? t.substring(0, colon) : t;
  }
}

package io.tpmkms.platform.health;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.quarkus.grpc.GlobalInterceptor;
import io.tpmkms.platform.tls.ServerTls;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * What a service runs on, told with every answer of its {@code grpc.health.v1.Health/Check}: one
 * response header {@code tpmkms-info-<name>} per fact (the TLS engine, the software cryptography
 * providers), so that {@code tpmkms health --details} shows it without a login and without an RPC
 * of its own. Facts are implementation names and versions, nothing secret (as Vault's
 * {@code sys/health} tells its version to anyone).
 */
@GlobalInterceptor
@ApplicationScoped
public class ServerInfo implements ServerInterceptor, jakarta.enterprise.inject.spi.Prioritized {
  /** Header names start with this; the rest is the fact's name. */
  public static final String HEADER_PREFIX = "tpmkms-info-";
  static final String HEALTH_CHECK = "grpc.health.v1.Health/Check";

  private static final Metadata.Key<String> NOT_READY = Metadata.Key.of(Readiness.NOT_READY_HEADER,
      Metadata.ASCII_STRING_MARSHALLER);

  private final Map<String, String> facts = new ConcurrentSkipListMap<>();
  private final Readiness readiness;

  public ServerInfo(ServerTls tls, Readiness readiness) {
    this.readiness = readiness;
    facts.put("tls", tls.engineName());
  }

  /** Adds or replaces a fact; {@code name} is lower-case letters and dashes, {@code value} printable ASCII. */
  public void put(String name, String value) {
    if (!name.matches("[a-z][a-z-]{0,30}")) throw new IllegalArgumentException("fact name " + name);
    facts.put(name, value.replaceAll("[^\\x20-\\x7e]", "?"));
  }

  /** The facts, by name. */
  public Map<String, String> facts() {
    return Map.copyOf(facts);
  }

  /** Outermost: health answers carry the facts whatever the later interceptors do. */
  @Override
  public int getPriority() {
    return 2_000_000;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    if (!HEALTH_CHECK.equals(call.getMethodDescriptor().getFullMethodName())) return next.startCall(call, headers);
    return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
      @Override
      public void sendHeaders(Metadata responseHeaders) {
        facts.forEach((name, value) -> responseHeaders.put(
            Metadata.Key.of(HEADER_PREFIX + name, Metadata.ASCII_STRING_MARSHALLER), value));
        // and why the service is not ready, when it is not (Readiness)
        String notReady = readiness.summary();
        if (!notReady.isEmpty()) {
          responseHeaders.put(NOT_READY, notReady.length() > 1000 ? notReady.substring(0, 1000) : notReady);
        }
        super.sendHeaders(responseHeaders);
      }
    }, headers);
  }
}

package io.tpmkms.platform.metrics;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every RPC of the service counted and timed by method and gRPC status code (issue 18):
 * {@code tpmkms_rpc_server_duration_seconds{method, code}} — a histogram whose {@code _count} is
 * the number of calls. {@code method} is the full gRPC method name ({@code
 * tpmkms.key.v1.KeyService/Encrypt}), {@code code} the status code's name ({@code OK},
 * {@code NOT_FOUND}...): both bounded sets (a call to a method the server does not have never
 * reaches an interceptor). Never a key name, principal or request field.
 */
@GlobalInterceptor
@ApplicationScoped
public class RpcMetrics implements ServerInterceptor, jakarta.enterprise.inject.spi.Prioritized {
  /** The metric's name in Micrometer; Prometheus shows it as {@code tpmkms_rpc_server_duration_seconds}. */
  public static final String NAME = "tpmkms.rpc.server.duration";
  /** Buckets from 250 µs (a cached Encrypt) to 10 s (an RSA-3072 key generation on a chip). */
  static final Duration[] BUCKETS = {
      Duration.ofNanos(250_000), Duration.ofMillis(1), Duration.ofNanos(2_500_000),
      Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(25), Duration.ofMillis(50),
      Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500), Duration.ofSeconds(1),
      Duration.ofMillis(2_500), Duration.ofSeconds(5), Duration.ofSeconds(10)};

  private final MeterRegistry registry;
  private final Meters meters;
  /** Per method, one timer per status code (by ordinal), made on first use: no key built per call. */
  private final Map<String, Timer[]> timers = new ConcurrentHashMap<>();

  /** {@code tpmkms.metrics.enabled=false}: calls pass through uncounted (to measure what counting costs). */
  private final boolean enabled;

  public RpcMetrics(MeterRegistry registry,
      MetricsConfig config) {
    this.registry = registry;
    this.enabled = config.enabled();
    this.meters = new Meters(registry);
  }

  @jakarta.annotation.PreDestroy
  void unregister() {
    timers.clear();
    meters.removeAll();
  }

  /** Outermost but for {@code ServerInfo}: the time includes authentication and the request gate. */
  @Override
  public int getPriority() {
    return 1_900_000;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    if (!enabled) return next.startCall(call, headers);
    long start = System.nanoTime();
    String method = call.getMethodDescriptor().getFullMethodName();
    return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
      @Override
      public void close(Status status, Metadata trailers) {
        timer(method, status.getCode()).record(System.nanoTime() - start, java.util.concurrent.TimeUnit.NANOSECONDS);
        super.close(status, trailers);
      }
    }, headers);
  }

  private Timer timer(String method, Status.Code code) {
    Timer[] byCode = timers.computeIfAbsent(method, m -> new Timer[Status.Code.values().length]);
    Timer t = byCode[code.ordinal()];
    if (t == null) { // a racing first use registers the same meter: Micrometer returns the existing one
      t = newTimer(method, code);
      byCode[code.ordinal()] = t;
    }
    return t;
  }

  private Timer newTimer(String method, Status.Code code) {
    return meters.add(Timer.builder(NAME)
        .description("gRPC calls served, by method and status code")
        .tag("method", method)
        .tag("code", code.name())
        .serviceLevelObjectives(BUCKETS)
        .register(registry));
  }
}

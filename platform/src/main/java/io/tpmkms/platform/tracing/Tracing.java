package io.tpmkms.platform.tracing;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapSetter;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporterBuilder;
import io.opentelemetry.sdk.common.Clock;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import io.opentelemetry.sdk.trace.samplers.Sampler;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * The service's traces (issue 18, ADR 0030): one SERVER span per RPC ({@link TracingInterceptor}),
 * child spans for authorization and TPM commands, CLIENT spans for the calls a
 * service makes to another (the W3C {@code traceparent} header carries the trace on), and the
 * trace carried into the audit service with each event ({@code AuditEvent.trace_parent}), so that
 * one call is one trace across the three services.
 *
 * <p>Off unless {@code tpmkms.tracing.endpoint} names an OTLP/HTTP collector: then no span is
 * made at all (the interceptors pass calls through). Spans are sent in batches from a background
 * thread; a slow or absent collector drops spans beyond the queue, never slows a call.
 *
 * <p>The current span travels in the gRPC {@link io.grpc.Context} ({@link #current()}), which the
 * pipeline already carries to the worker or TPM-queue thread it hands a call to (the OpenTelemetry
 * thread-local context is not used: Quarkus keeps it in the Vert.x context, which the call leaves).
 *
 * <p>What a span may hold: method names, gRPC status codes and stable error reasons, key names,
 * TPM command names and outcomes, authorization decisions. Never a request or response field
 * value, a plaintext, key material, a token or a principal.
 */
@Singleton
public class Tracing {
  private static final Logger LOG = Logger.getLogger(Tracing.class);
  static final io.grpc.Context.Key<Span> SPAN = io.grpc.Context.key("tpmkms-span");
  static final AttributeKey<String> RPC_SYSTEM = AttributeKey.stringKey("rpc.system");
  static final AttributeKey<String> RPC_SERVICE = AttributeKey.stringKey("rpc.service");
  static final AttributeKey<String> RPC_METHOD = AttributeKey.stringKey("rpc.method");
  static final AttributeKey<Long> RPC_STATUS = AttributeKey.longKey("rpc.grpc.status_code");
  static final AttributeKey<String> REASON = AttributeKey.stringKey("tpmkms.error.reason");
  private static final W3CTraceContextPropagator W3C = W3CTraceContextPropagator.getInstance();

  private final SdkTracerProvider provider;
  private final Tracer tracer;
  private final Clock clock = Clock.getDefault();

  @Inject
  public Tracing(TracingConfig config) {
    this(configured(config), config);
  }

  /** The exporter the settings ask for; null: tracing off. */
  private static SpanExporter configured(TracingConfig config) {
    String endpoint = config.endpoint().filter(e -> !e.isBlank()).orElse(null);
    switch (config.exporter()) {
      case "none" -> {
        LOG.infof("tracing: spans of %s made for log correlation and propagation, not exported (sampled %.2f of "
            + "new traces)", config.serviceName(), config.sampleRatio());
        return NOT_EXPORTED;
      }
      case "otlp" -> {
        if (endpoint == null) return null;
        LOG.infof("tracing: sending spans of %s to %s (sampled %.2f of new traces)", config.serviceName(), endpoint,
            config.sampleRatio());
        return exporter(endpoint, config);
      }
      default -> throw new IllegalArgumentException("tpmkms.tracing.exporter must be otlp or none, not "
          + config.exporter());
    }
  }

  /** {@code exporter=none}: spans are made and ended, and dropped here. */
  static final SpanExporter NOT_EXPORTED = new SpanExporter() {
    @Override
    public io.opentelemetry.sdk.common.CompletableResultCode export(java.util.Collection<
        io.opentelemetry.sdk.trace.data.SpanData> spans) {
      return io.opentelemetry.sdk.common.CompletableResultCode.ofSuccess();
    }

    @Override
    public io.opentelemetry.sdk.common.CompletableResultCode flush() {
      return io.opentelemetry.sdk.common.CompletableResultCode.ofSuccess();
    }

    @Override
    public io.opentelemetry.sdk.common.CompletableResultCode shutdown() {
      return io.opentelemetry.sdk.common.CompletableResultCode.ofSuccess();
    }
  };

  /** With {@code exporter} (null: off); the settings but the endpoint from {@code config}. */
  public Tracing(SpanExporter exporter, TracingConfig config) {
    this(exporter, config.serviceName(), config.sampleRatio(), config.exportDelay(), config.queueSize());
  }

  /** Tracing sending spans to {@code exporter} (null: off). */
  public Tracing(SpanExporter exporter, String serviceName, double sampleRatio, Duration exportDelay, int queueSize) {
    if (exporter == null) {
      provider = null;
      tracer = null;
      return;
    }
    if (!(sampleRatio >= 0 && sampleRatio <= 1)) {
      throw new IllegalArgumentException("tpmkms.tracing.sample-ratio must be between 0 and 1, not " + sampleRatio);
    }
    var builder = SdkTracerProvider.builder()
        .setResource(Resource.getDefault().merge(Resource.create(
            Attributes.of(AttributeKey.stringKey("service.name"), serviceName))))
        .setSampler(Sampler.parentBased(Sampler.traceIdRatioBased(sampleRatio)));
    if (exporter != NOT_EXPORTED) { // not exported: no processor at all, an ended span is simply dropped
      builder.addSpanProcessor(BatchSpanProcessor.builder(exporter)
          .setScheduleDelay(exportDelay)
          .setMaxQueueSize(queueSize)
          .build());
    }
    provider = builder.build();
    tracer = provider.get("io.tpmkms");
  }

  /** Tracing that makes no span. */
  public static Tracing off() {
    return new Tracing(null, "tpmkms", 1.0, Duration.ofSeconds(1), 1);
  }

  private static SpanExporter exporter(String endpoint, TracingConfig config) {
    OtlpHttpSpanExporterBuilder b = OtlpHttpSpanExporter.builder().setEndpoint(endpoint)
        .setTimeout(Duration.ofSeconds(10));
    config.caFile().filter(f -> !f.isBlank()).ifPresent(f -> {
      try {
        b.setTrustedCertificates(Files.readAllBytes(Path.of(f)));
      } catch (IOException e) {
        throw new IllegalStateException("tpmkms.tracing.ca-file " + f + " cannot be read: " + e.getMessage(), e);
      }
    });
    headers(config.headers().orElse("")).forEach(b::addHeader);
    return b.build();
  }

  /** "a=1, b=2" → {a=1, b=2}; a pair without '=' is refused (its text is not repeated: it may be a secret). */
  static Map<String, String> headers(String spec) {
    Map<String, String> out = new java.util.LinkedHashMap<>();
    int i = 0;
    for (String pair : spec.split(",")) {
      i++;
      if (pair.isBlank()) continue;
      int eq = pair.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("tpmkms.tracing.headers: pair " + i + " is not name=value");
      out.put(pair.substring(0, eq).trim(), pair.substring(eq + 1).trim());
    }
    return out;
  }

  @jakarta.annotation.PreDestroy
  void close() {
    if (provider != null) provider.shutdown().join(5, TimeUnit.SECONDS); // sends what is left
  }

  /** Whether spans are made. */
  public boolean enabled() {
    return provider != null;
  }

  /** The span of the code running now (the call's, or a child made current by {@link #context}); null if none. */
  public static Span current() {
    return SPAN.get();
  }

  /** The gRPC context with {@code span} current: calls made within it are its children. */
  public static io.grpc.Context context(Span span) {
    return io.grpc.Context.current().withValue(SPAN, span);
  }

  // ---- spans -------------------------------------------------------------------------------------

  /** The SERVER span of an incoming call, child of the caller's {@code traceparent} if it sent one. */
  Span server(String fullMethod, Metadata headers) {
    Context parent = W3C.extract(Context.root(), headers, METADATA_GETTER);
    int slash = fullMethod.lastIndexOf('/');
    return tracer.spanBuilder(fullMethod).setParent(parent).setSpanKind(SpanKind.SERVER)
        .setAttribute(RPC_SYSTEM, "grpc")
        .setAttribute(RPC_SERVICE, slash < 0 ? fullMethod : fullMethod.substring(0, slash))
        .setAttribute(RPC_METHOD, slash < 0 ? fullMethod : fullMethod.substring(slash + 1))
        .startSpan();
  }

  /**
   * A child of the current span named {@code name}; an invalid span (whose methods do nothing) when
   * tracing is off or no span is current.
   */
  public Span child(String name) {
    Span parent = current();
    if (tracer == null || parent == null || !parent.getSpanContext().isValid()) return Span.getInvalid();
    return tracer.spanBuilder(name).setParent(Context.root().with(parent)).startSpan();
  }

  /**
   * A span for work that has already happened under the current span (a TPM command, reported
   * after it returned): it started {@code nanos} ago and ends now.
   */
  public void finished(String name, long nanos, AttributeKey<String> key, String value,
      AttributeKey<String> key2, String value2, boolean failed) {
    Span parent = current();
    if (tracer == null || parent == null || !parent.getSpanContext().isSampled()) return;
    long now = clock.now();
    Span s = tracer.spanBuilder(name).setParent(Context.root().with(parent))
        .setStartTimestamp(now - nanos, TimeUnit.NANOSECONDS)
        .setAttribute(key, value).setAttribute(key2, value2).startSpan();
    if (failed) s.setStatus(StatusCode.ERROR);
    s.end(now, TimeUnit.NANOSECONDS);
  }

  /**
   * A span named {@code name} whose parent is the W3C {@code traceParent} (an event's, carried from
   * the service that recorded it); an invalid span when tracing is off or there is no valid parent.
   */
  public Span childOf(String traceParent, String name) {
    // "00-<32 hex>-<16 hex>-<2 hex>": anything else (from a hostile producer) is ignored, never parsed at length
    if (tracer == null || traceParent == null || traceParent.length() != 55) return Span.getInvalid();
    Context parent = W3C.extract(Context.root(), traceParent, STRING_GETTER);
    if (!Span.fromContext(parent).getSpanContext().isValid()) return Span.getInvalid();
    return tracer.spanBuilder(name).setParent(parent).setSpanKind(SpanKind.CONSUMER).startSpan();
  }

  /**
   * The W3C {@code traceparent} of {@code span}, or "" when it is not a valid, sampled span (an
   * unsampled trace records nothing downstream either, so its events carry nothing).
   */
  public static String traceParent(Span span) {
    if (span == null || !span.getSpanContext().isSampled()) return "";
    var c = span.getSpanContext();
    return "00-" + c.getTraceId() + "-" + c.getSpanId() + "-" + c.getTraceFlags().asHex();
  }

  /** Ends a call's span with its gRPC status: ERROR for the codes that mean the server failed. */
  static void end(Span span, Status status, Metadata trailers, boolean server) {
    Status.Code code = status.getCode();
    span.setAttribute(RPC_STATUS, code.value());
    if (code != Status.Code.OK) {
      String reason = reasonOf(status, trailers);
      if (!reason.isEmpty()) span.setAttribute(REASON, reason);
      if (!server || SERVER_ERRORS.contains(code)) span.setStatus(StatusCode.ERROR, code.name());
    }
    span.end();
  }

  /** OpenTelemetry's gRPC conventions: a server span is an error for these codes only. */
  private static final java.util.Set<Status.Code> SERVER_ERRORS = java.util.EnumSet.of(Status.Code.UNKNOWN,
      Status.Code.DEADLINE_EXCEEDED, Status.Code.UNIMPLEMENTED, Status.Code.INTERNAL, Status.Code.UNAVAILABLE,
      Status.Code.DATA_LOSS);

  /** The stable ErrorInfo reason in the status details, "" if none (never the free-text description). */
  private static String reasonOf(Status status, Metadata trailers) {
    if (trailers == null) return "";
    try {
      com.google.rpc.Status st = io.grpc.protobuf.StatusProto.fromStatusAndTrailers(status, trailers);
      for (var any : st.getDetailsList()) {
        if (any.is(com.google.rpc.ErrorInfo.class)) return any.unpack(com.google.rpc.ErrorInfo.class).getReason();
      }
    } catch (RuntimeException | com.google.protobuf.InvalidProtocolBufferException e) {
      return "";
    }
    return "";
  }

  // ---- calls to other services -------------------------------------------------------------------

  /**
   * For the channels to the other tpmkms services: a CLIENT span per call made under a current span,
   * its {@code traceparent} sent with the call. Calls made with no current span (background work)
   * go out untouched.
   */
  public ClientInterceptor clientInterceptor() {
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        Span parent = tracer == null ? null : current();
        if (parent == null || !parent.getSpanContext().isValid()) return next.newCall(method, options);
        String name = method.getFullMethodName();
        int slash = name.lastIndexOf('/');
        Span span = tracer.spanBuilder(name).setParent(Context.root().with(parent)).setSpanKind(SpanKind.CLIENT)
            .setAttribute(RPC_SYSTEM, "grpc")
            .setAttribute(RPC_SERVICE, slash < 0 ? name : name.substring(0, slash))
            .setAttribute(RPC_METHOD, slash < 0 ? name : name.substring(slash + 1))
            .startSpan();
        return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            W3C.inject(Context.root().with(span), headers, METADATA_SETTER);
            super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
              @Override
              public void onClose(Status status, Metadata trailers) {
                end(span, status, trailers, false);
                super.onClose(status, trailers);
              }
            }, headers);
          }
        };
      }
    };
  }

  // ---- W3C trace context in gRPC metadata ---------------------------------------------------------

  static final TextMapGetter<Metadata> METADATA_GETTER = new TextMapGetter<>() {
    @Override
    public Iterable<String> keys(Metadata carrier) {
      return carrier.keys();
    }

    @Override
    public String get(Metadata carrier, String key) {
      if (carrier == null || key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) return null;
      return carrier.get(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
    }
  };

  static final TextMapSetter<Metadata> METADATA_SETTER = (carrier, key, value) -> {
    if (carrier != null) carrier.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), value);
  };

  private static final TextMapGetter<String> STRING_GETTER = new TextMapGetter<>() {
    @Override
    public Iterable<String> keys(String carrier) {
      return List.of("traceparent");
    }

    @Override
    public String get(String carrier, String key) {
      return "traceparent".equals(key) ? carrier : null;
    }
  };
}

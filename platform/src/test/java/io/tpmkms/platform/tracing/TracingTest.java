package io.tpmkms.platform.tracing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.ErrorInfo;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class TracingTest {
  static final String CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  static final String CALLER_SPAN = "00f067aa0ba902b7";
  static final String TRACEPARENT = "00-" + CALLER_TRACE + "-" + CALLER_SPAN + "-01";

  /** Keeps what the batch processor exports. */
  static final class Sink implements SpanExporter {
    final List<SpanData> spans = new CopyOnWriteArrayList<>();

    @Override
    public CompletableResultCode export(Collection<SpanData> batch) {
      spans.addAll(batch);
      return CompletableResultCode.ofSuccess();
    }

    @Override
    public CompletableResultCode flush() {
      return CompletableResultCode.ofSuccess();
    }

    @Override
    public CompletableResultCode shutdown() {
      return CompletableResultCode.ofSuccess();
    }

    SpanData named(String name) {
      return spans.stream().filter(s -> s.getName().equals(name)).findFirst()
          .orElseThrow(() -> new AssertionError("no span " + name + " in " + spans));
    }
  }

  final Sink sink = new Sink();
  final Tracing tracing = new Tracing(sink, "tpmkms-test", 1.0, Duration.ofMillis(10), 128);

  void flush() {
    tracing.close();
  }

  static Metadata headers(String traceparent) {
    Metadata m = new Metadata();
    if (traceparent != null) m.put(Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER), traceparent);
    return m;
  }

  @Test
  void serverSpan_continuesTheCallersTrace_andItsChildrenNestUnderIt() throws Exception {
    Span server = tracing.server("tpmkms.key.v1.KeyService/Encrypt", headers(TRACEPARENT));
    Tracing.context(server).run(() -> {
      assertSame(server, Tracing.current());
      Span authorize = tracing.child("authorize");
      authorize.end();
      tracing.finished("Sign", 2_000_000, io.opentelemetry.api.common.AttributeKey.stringKey("tpm.command"), "Sign",
          io.opentelemetry.api.common.AttributeKey.stringKey("tpm.outcome"), "OK", false);
    });
    Tracing.end(server, Status.OK, new Metadata(), true);
    flush();
    SpanData s = sink.named("tpmkms.key.v1.KeyService/Encrypt");
    assertEquals(CALLER_TRACE, s.getTraceId());
    assertEquals(CALLER_SPAN, s.getParentSpanId());
    assertEquals(SpanKind.SERVER, s.getKind());
    assertEquals("tpmkms.key.v1.KeyService", s.getAttributes().get(Tracing.RPC_SERVICE));
    assertEquals("Encrypt", s.getAttributes().get(Tracing.RPC_METHOD));
    assertEquals(0L, s.getAttributes().get(Tracing.RPC_STATUS));
    assertEquals("tpmkms-test", s.getResource().getAttribute(
        io.opentelemetry.api.common.AttributeKey.stringKey("service.name")));
    SpanData authorize = sink.named("authorize");
    assertEquals(s.getSpanId(), authorize.getParentSpanId());
    SpanData sign = sink.named("Sign");
    assertEquals(s.getSpanId(), sign.getParentSpanId());
    long took = sign.getEndEpochNanos() - sign.getStartEpochNanos();
    assertEquals(2_000_000, took, "a TPM command's span lasts the time the command took");
  }

  @Test
  void serverSpan_withoutTraceparent_startsATrace_andMalformedOnesAreIgnored() {
    for (String bad : new String[] {null, "garbage", "00-" + "0".repeat(32) + "-" + CALLER_SPAN + "-01",
        "00-" + CALLER_TRACE + "-" + "0".repeat(16) + "-01", TRACEPARENT + "x".repeat(10000)}) {
      Span s = tracing.server("a.B/C", headers(bad));
      assertTrue(s.getSpanContext().isValid());
      assertFalse(s.getSpanContext().getTraceId().equals(CALLER_TRACE), String.valueOf(bad));
      s.end();
    }
  }

  @Test
  void serverSpan_endedByStatus_errorOnlyForServerFaults_withTheStableReasonNotTheMessage() {
    Span denied = tracing.server("a.B/Denied", headers(null));
    com.google.rpc.Status detail = com.google.rpc.Status.newBuilder().setCode(Status.Code.PERMISSION_DENIED.value())
        .setMessage("permission denied: secret-ish text")
        .addDetails(Any.pack(ErrorInfo.newBuilder().setReason("PERMISSION_DENIED").setDomain("tpmkms").build()))
        .build();
    var e = StatusProto.toStatusRuntimeException(detail);
    Tracing.end(denied, e.getStatus(), e.getTrailers(), true);
    Span failed = tracing.server("a.B/Failed", headers(null));
    Tracing.end(failed, Status.UNAVAILABLE.withDescription("the TPM is away"), new Metadata(), true);
    flush();
    SpanData d = sink.named("a.B/Denied");
    assertEquals(StatusCode.UNSET, d.getStatus().getStatusCode(), "a refusal is not the server's error");
    assertEquals("PERMISSION_DENIED", d.getAttributes().get(Tracing.REASON));
    assertEquals((long) Status.Code.PERMISSION_DENIED.value(), d.getAttributes().get(Tracing.RPC_STATUS));
    assertFalse(d.toString().contains("secret-ish"), "the free-text description is not copied");
    assertEquals(StatusCode.ERROR, sink.named("a.B/Failed").getStatus().getStatusCode());
    assertFalse(sink.named("a.B/Failed").toString().contains("the TPM is away"));
  }

  static final MethodDescriptor<byte[], byte[]> METHOD = MethodDescriptor.<byte[], byte[]>newBuilder()
      .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("tpmkms.policy.v1.PolicyService/Authorize")
      .setRequestMarshaller(new Bytes()).setResponseMarshaller(new Bytes()).build();

  static final class Bytes implements MethodDescriptor.Marshaller<byte[]> {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (java.io.IOException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /** A channel whose calls record the headers they were started with, and close with {@code status}. */
  static Channel recording(AtomicReference<Metadata> sent, Status status) {
    return new Channel() {
      @Override
      public <Q, R> ClientCall<Q, R> newCall(MethodDescriptor<Q, R> method, CallOptions options) {
        return new ClientCall<>() {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            sent.set(headers);
            listener.onClose(status, new Metadata());
          }

          @Override
          public void request(int n) {}

          @Override
          public void cancel(String message, Throwable cause) {}

          @Override
          public void halfClose() {}

          @Override
          public void sendMessage(Q message) {}
        };
      }

      @Override
      public String authority() {
        return "test";
      }
    };
  }

  @Test
  void clientCalls_underASpan_getAClientSpan_andCarryItsTraceparent() throws Exception {
    AtomicReference<Metadata> sent = new AtomicReference<>();
    Channel ch = io.grpc.ClientInterceptors.intercept(recording(sent, Status.OK), tracing.clientInterceptor());
    Span server = tracing.server("tpmkms.key.v1.KeyService/Encrypt", headers(null));
    Span authorize = Tracing.context(server).call(() -> tracing.child("authorize"));
    Tracing.context(authorize).run(() ->
        ch.newCall(METHOD, CallOptions.DEFAULT).start(new ClientCall.Listener<>() {}, new Metadata()));
    authorize.end();
    server.end();
    String traceparent = sent.get().get(Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER));
    assertNotNull(traceparent, "the trace goes on with the call");
    flush();
    SpanData client = sink.named("tpmkms.policy.v1.PolicyService/Authorize");
    assertEquals(SpanKind.CLIENT, client.getKind());
    assertEquals(sink.named("authorize").getSpanId(), client.getParentSpanId());
    assertEquals("00-" + client.getTraceId() + "-" + client.getSpanId() + "-01", traceparent);

    // background work (no current span) goes out untouched
    sent.set(null);
    ch.newCall(METHOD, CallOptions.DEFAULT).start(new ClientCall.Listener<>() {}, new Metadata());
    assertEquals(null, sent.get().get(Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER)));
  }

  @Test
  void anEventsTraceparent_parentsTheAuditServicesSpan_andOnlyAWellFormedOne() {
    Span recorded = tracing.server("x.Y/Z", headers(null));
    String tp = Tracing.traceParent(recorded);
    assertEquals(55, tp.length());
    Span append = tracing.childOf(tp, "audit.append");
    assertEquals(recorded.getSpanContext().getTraceId(), append.getSpanContext().getTraceId());
    for (String bad : new String[] {"", "00-zz", tp + " ", tp.replace('0', 'g'), "x".repeat(55)}) {
      assertFalse(tracing.childOf(bad, "audit.append").getSpanContext().isValid(), bad);
    }
    assertEquals("", Tracing.traceParent(null));
    assertEquals("", Tracing.traceParent(Span.getInvalid()));
  }

  @Test
  void off_makesNoSpan_andPassesCallsThrough() throws Exception {
    Tracing off = Tracing.off();
    assertFalse(off.enabled());
    Span server = tracing.server("a.B/C", headers(null));
    Tracing.context(server).run(() -> {
      assertFalse(off.child("authorize").getSpanContext().isValid());
      off.finished("Sign", 1, Tracing.REASON, "x", Tracing.REASON, "y", false); // does nothing
    });
    assertFalse(off.childOf(Tracing.traceParent(server), "audit.append").getSpanContext().isValid());
    AtomicReference<Metadata> sent = new AtomicReference<>();
    Channel ch = io.grpc.ClientInterceptors.intercept(recording(sent, Status.OK), off.clientInterceptor());
    Tracing.context(server).run(() ->
        ch.newCall(METHOD, CallOptions.DEFAULT).start(new ClientCall.Listener<>() {}, new Metadata()));
    assertEquals(null, sent.get().get(Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER)));
  }

  @Test
  void unsampledTraces_areFollowed_notRecorded() {
    Span s = tracing.server("a.B/C", headers("00-" + CALLER_TRACE + "-" + CALLER_SPAN + "-00"));
    assertFalse(s.getSpanContext().isSampled());
    assertFalse(s.isRecording());
    assertEquals("", Tracing.traceParent(s), "an unsampled call's audit event carries no trace");
    s.end();
    flush();
    assertTrue(sink.spans.isEmpty(), sink.spans.toString());
  }

  static TracingConfig settings(String exporter, String endpoint) {
    return new TracingConfig() {
      @Override public java.util.Optional<String> endpoint() { return java.util.Optional.ofNullable(endpoint); }
      @Override public String exporter() { return exporter; }
      @Override public String serviceName() { return "tpmkms-test"; }
      @Override public double sampleRatio() { return 1.0; }
      @Override public Duration exportDelay() { return Duration.ofSeconds(1); }
      @Override public int queueSize() { return 16; }
      @Override public java.util.Optional<String> caFile() { return java.util.Optional.empty(); }
      @Override public java.util.Optional<String> headers() { return java.util.Optional.empty(); }
    };
  }

  @Test
  void exporterNone_makesSpansForCorrelation_withoutAnEndpoint_andTheDefaultNeedsOne() {
    Tracing none = new Tracing(settings("none", null));
    assertTrue(none.enabled());
    Span s = none.server("a.B/C", headers(TRACEPARENT));
    assertEquals(CALLER_TRACE, s.getSpanContext().getTraceId(), "the caller's trace goes on");
    assertEquals(55, Tracing.traceParent(s).length(), "and on into the audit events");
    s.end();
    none.close();
    assertFalse(new Tracing(settings("otlp", null)).enabled(), "otlp without an endpoint: off");
    assertFalse(new Tracing(settings("otlp", " ")).enabled());
    var e = assertThrows(IllegalArgumentException.class, () -> new Tracing(settings("zipkin", null)));
    assertTrue(e.getMessage().contains("otlp or none"), e.getMessage());
  }

  @Test
  void settings_checked_andHeadersParsedWithoutRepeatingThem() {
    assertEquals(java.util.Map.of("api-key", "s3cret", "x", "y=z"), Tracing.headers("api-key=s3cret, x=y=z,"));
    var e = assertThrows(IllegalArgumentException.class, () -> Tracing.headers("a=b,justasecret"));
    assertFalse(e.getMessage().contains("justasecret"));
    assertThrows(IllegalArgumentException.class, () -> new Tracing(sink, "x", 1.5, Duration.ofSeconds(1), 1));
  }
}

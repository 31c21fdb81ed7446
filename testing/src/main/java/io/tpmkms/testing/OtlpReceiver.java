package io.tpmkms.testing;

import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * An OTLP/HTTP trace receiver for tests (issue 18): takes {@code POST /v1/traces} as a collector
 * does (protobuf, optionally gzip), answers 200, and keeps every span with its service name, and
 * every request body as received (to scan for secrets).
 */
public final class OtlpReceiver implements AutoCloseable {
  /** A span as received. {@code kind}: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  public record Span(String service, String name, String traceId, String spanId, String parentSpanId, int kind,
      Map<String, String> attributes, boolean error, long startNanos, long endNanos) {
    @Override
    public String toString() {
      return service + " " + name + " trace " + traceId + " span " + spanId + " parent " + parentSpanId + " "
          + attributes + (error ? " ERROR" : "");
    }
  }

  private final HttpServer server;
  private final List<Span> spans = new CopyOnWriteArrayList<>();
  private final List<byte[]> bodies = new CopyOnWriteArrayList<>();

  private OtlpReceiver(HttpServer server) {
    this.server = server;
  }

  public static OtlpReceiver start() throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
    OtlpReceiver r = new OtlpReceiver(server);
    server.createContext("/v1/traces", exchange -> {
      try (exchange) {
        byte[] body;
        try (InputStream in = "gzip".equalsIgnoreCase(exchange.getRequestHeaders().getFirst("Content-Encoding"))
            ? new java.util.zip.GZIPInputStream(exchange.getRequestBody()) : exchange.getRequestBody()) {
          body = in.readAllBytes();
        }
        if (!"POST".equals(exchange.getRequestMethod())) {
          exchange.sendResponseHeaders(405, -1);
          return;
        }
        r.bodies.add(body);
        r.take(ExportTraceServiceRequest.parseFrom(body));
        byte[] answer = ExportTraceServiceResponse.getDefaultInstance().toByteArray();
        exchange.getResponseHeaders().add("Content-Type", "application/x-protobuf");
        exchange.sendResponseHeaders(200, answer.length == 0 ? -1 : answer.length);
        if (answer.length > 0) exchange.getResponseBody().write(answer);
      }
    });
    server.start();
    return r;
  }

  private void take(ExportTraceServiceRequest request) {
    HexFormat hex = HexFormat.of();
    for (var rs : request.getResourceSpansList()) {
      String service = "";
      for (KeyValue kv : rs.getResource().getAttributesList()) {
        if (kv.getKey().equals("service.name")) service = kv.getValue().getStringValue();
      }
      for (var ss : rs.getScopeSpansList()) {
        for (var s : ss.getSpansList()) {
          Map<String, String> attributes = new LinkedHashMap<>();
          for (KeyValue kv : s.getAttributesList()) attributes.put(kv.getKey(), text(kv.getValue()));
          spans.add(new Span(service, s.getName(), hex.formatHex(s.getTraceId().toByteArray()),
              hex.formatHex(s.getSpanId().toByteArray()),
              s.getParentSpanId().isEmpty() ? "" : hex.formatHex(s.getParentSpanId().toByteArray()),
              s.getKindValue(), attributes,
              s.getStatus().getCode() == io.opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR,
              s.getStartTimeUnixNano(), s.getEndTimeUnixNano()));
        }
      }
    }
  }

  private static String text(AnyValue v) {
    return switch (v.getValueCase()) {
      case STRING_VALUE -> v.getStringValue();
      case INT_VALUE -> Long.toString(v.getIntValue());
      case BOOL_VALUE -> Boolean.toString(v.getBoolValue());
      case DOUBLE_VALUE -> Double.toString(v.getDoubleValue());
      default -> v.toString();
    };
  }

  /** The collector URL to give a service ({@code TPMKMS_TRACING_ENDPOINT}). */
  public String endpoint() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1/traces";
  }

  /** Every span received so far. */
  public List<Span> spans() {
    return List.copyOf(spans);
  }

  /** Every request body received so far, as sent. */
  public List<byte[]> bodies() {
    return List.copyOf(bodies);
  }

  /** The spans of trace {@code traceId}. */
  public List<Span> trace(String traceId) {
    return spans.stream().filter(s -> s.traceId().equals(traceId)).toList();
  }

  /** Waits until a received span matches, up to {@code timeout}; the span, or null. */
  public Span await(Predicate<Span> match, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (Span s : spans) {
        if (match.test(s)) return s;
      }
      if (System.nanoTime() - end > 0) return null;
      Thread.sleep(50);
    }
  }

  @Override
  public void close() {
    server.stop(0);
  }
}

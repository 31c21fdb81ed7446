package io.tpmkms.platform.tracing;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.Optional;

/** Traces (issue 18, ADR 0030): off unless an OTLP endpoint is set. */
@ConfigMapping(prefix = "tpmkms.tracing")
public interface TracingConfig {
  /**
   * The collector's OTLP/HTTP traces URL, e.g. {@code http://otel-collector:4318/v1/traces}
   * ({@code TPMKMS_TRACING_ENDPOINT}). Unset (the default): no span is made and nothing is sent.
   */
  Optional<String> endpoint();

  /**
   * {@code otlp} (the default): spans go to {@link #endpoint()}. {@code none}: spans are made —
   * trace ids in the log lines, the W3C {@code traceparent} passed on to the other services and to
   * the audit events, a caller's trace continued — but nothing is exported (log correlation without
   * a collector). Tracing is on when an endpoint is set or the exporter is {@code none}.
   */
  @WithDefault("otlp")
  String exporter();

  /** The service's name in its spans' resource ({@code service.name}). */
  @WithDefault("tpmkms")
  String serviceName();

  /**
   * The share of traces recorded, 0 to 1, for calls that arrive without a sampled parent (a
   * caller's sampled {@code traceparent} is always followed, so one call stays one trace).
   */
  @WithDefault("1.0")
  double sampleRatio();

  /** Longest a finished span waits before it is sent (spans go in batches, off the calls' threads). */
  @WithDefault("2s")
  Duration exportDelay();

  /** Spans kept while the collector is slow or away; beyond it new spans are dropped (counted), never a call slowed. */
  @WithDefault("8192")
  int queueSize();

  /** PEM CA bundle an {@code https} endpoint is verified against (default: the JDK's trust store). */
  Optional<String> caFile();

  /**
   * Headers sent with every export, {@code name=value} pairs separated by commas (a collector's
   * API key). Never logged.
   */
  Optional<String> headers();
}

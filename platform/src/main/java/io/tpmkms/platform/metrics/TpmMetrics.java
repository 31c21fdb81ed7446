package io.tpmkms.platform.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkus.runtime.Startup;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.TpmObserver;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The TPM seen from the service (issue 18): {@code tpmkms_tpm_command_duration_seconds{command,
 * outcome}} for every TPM command (its {@code _count} by outcome is the error count by class:
 * {@code ok, retry, memory, auth, tpm_error, io_error}), the key cache's
 * {@code tpmkms_tpm_object_loads_total} and {@code tpmkms_tpm_object_evictions_total},
 * {@code tpmkms_tpm_connects_total{kind=first|reconnect}}, and {@code tpmkms_tpm_queue_depth}: the
 * threads waiting for the TPM. {@code command} is the TPM 2.0 command's name, a bounded set.
 */
@Startup
@ApplicationScoped
public class TpmMetrics implements TpmObserver {
  static final Duration[] BUCKETS = {
      Duration.ofNanos(50_000), Duration.ofNanos(100_000), Duration.ofNanos(250_000), Duration.ofNanos(500_000),
      Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(25),
      Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500),
      Duration.ofSeconds(1), Duration.ofSeconds(5)};

  private final MeterRegistry registry;
  private final Meters meters;
  private final Map<String, Timer> timers = new ConcurrentHashMap<>();
  private final Counter loads;
  private final Counter evictions;
  private final Counter connects;
  private final Counter reconnects;
  private final io.tpmkms.platform.tracing.Tracing tracing;
  private final boolean enabled;

  private static final io.opentelemetry.api.common.AttributeKey<String> TPM_COMMAND =
      io.opentelemetry.api.common.AttributeKey.stringKey("tpm.command");
  private static final io.opentelemetry.api.common.AttributeKey<String> TPM_OUTCOME =
      io.opentelemetry.api.common.AttributeKey.stringKey("tpm.outcome");

  public TpmMetrics(MeterRegistry registry, io.tpmkms.platform.tracing.Tracing tracing,
      MetricsConfig config) {
    this.registry = registry;
    this.tracing = tracing;
    this.enabled = config.enabled();
    this.meters = new Meters(registry);
    this.loads = Counter.builder("tpmkms.tpm.object.loads").description("key objects loaded into the TPM")
        .register(registry);
    meters.add(loads);
    this.evictions = Counter.builder("tpmkms.tpm.object.evictions")
        .description("key objects flushed from the TPM to make room").register(registry);
    this.connects = Counter.builder("tpmkms.tpm.connects").tag("kind", "first")
        .description("connections made to the TPM").register(registry);
    this.reconnects = Counter.builder("tpmkms.tpm.connects").tag("kind", "reconnect")
        .description("connections made to the TPM").register(registry);
    meters.add(evictions);
    meters.add(connects);
    meters.add(reconnects);
    TpmObserver.install(this);
  }

  @jakarta.annotation.PreDestroy
  void unregister() {
    if (TpmObserver.current() == this) TpmObserver.install(null);
    timers.clear();
    meters.removeAll();
  }

  /** Publishes how many threads wait for {@code connection}'s TPM. */
  public void watch(TpmConnection connection) {
    meters.add(Gauge.builder("tpmkms.tpm.queue.depth", connection, TpmConnection::waiting)
        .description("threads waiting for the TPM").register(registry));
  }

  @Override
  public void command(String command, long nanos, Outcome outcome) {
    // a span under the call's (issue 18): the TPM command's time within the call, and how it ended
    if (tracing.enabled()) {
      tracing.finished("TPM2_" + command, nanos, TPM_COMMAND, command, TPM_OUTCOME, outcome.name(), outcome != Outcome.OK);
    }
    if (!enabled) return;
    timers.computeIfAbsent(command + ' ' + outcome, k -> meters.add(Timer.builder("tpmkms.tpm.command.duration")
        .description("TPM commands, by command and outcome")
        .tag("command", command)
        .tag("outcome", outcome.name().toLowerCase(java.util.Locale.ROOT))
        .serviceLevelObjectives(BUCKETS)
        .register(registry))).record(nanos, TimeUnit.NANOSECONDS);
  }

  @Override
  public void objectLoaded() {
    loads.increment();
  }

  @Override
  public void objectEvicted() {
    evictions.increment();
  }

  @Override
  public void connected(boolean reconnect) {
    (reconnect ? reconnects : connects).increment();
  }
}

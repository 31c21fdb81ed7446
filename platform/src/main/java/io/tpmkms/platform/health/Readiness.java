package io.tpmkms.platform.health;

import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.grpc.runtime.health.GrpcHealthStorage;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Readiness that means something (issue 18): the service is ready only while everything a call
 * needs is there — its database, its TPM when it has one, the policy service for the key service
 * (authorization fails closed), audit durability (the journal accepts events). Each part registers
 * a {@link #register check}; every {@code tpmkms.health.check-interval} (2 s) all are run, and the
 * gRPC health status of the server ({@code ""}) and of {@code readiness} follows: NOT_SERVING while
 * any fails. The reasons go with every {@code grpc.health.v1.Health/Check} answer in the header
 * {@code tpmkms-not-ready} ("tpm: …; policy-service: …", added by {@link ServerInfo}), into the log when they change, and into
 * {@code tpmkms_ready{check}} (1 or 0). Liveness is not affected: it is the process answering.
 */
@ApplicationScoped
public class Readiness {
  private static final Logger LOG = Logger.getLogger(Readiness.class);
  /** The header of a health answer that says why the service is not ready. */
  public static final String NOT_READY_HEADER = "tpmkms-not-ready";

  /** One thing the service needs: empty when fine, else why not (short, no secrets). */
  @FunctionalInterface
  public interface Check {
    Optional<String> problem();
  }

  private final GrpcHealthStorage storage;
  private final MeterRegistry registry;
  private final HealthConfig config;
  private final Map<String, Check> checks = new ConcurrentSkipListMap<>();
  private final Map<String, String> problems = new ConcurrentHashMap<>();
  private volatile String summary = "";
  private ScheduledExecutorService scheduler;
  private final io.tpmkms.platform.metrics.Meters meters;

  public Readiness(GrpcHealthStorage storage, MeterRegistry registry, HealthConfig config) {
    this.storage = storage;
    this.registry = registry;
    this.config = config;
    this.meters = new io.tpmkms.platform.metrics.Meters(registry);
  }

  /** Adds a check under {@code name} (lower-case words and dashes: "database", "tpm", "policy-service"). */
  public void register(String name, Check check) {
    checks.put(name, check);
    meters.add(Gauge.builder("tpmkms.ready", problems, p -> p.containsKey(name) ? 0 : 1).tag("check", name)
        .description("whether the check passes (1) or keeps the service from being ready (0)").register(registry));
  }

  /** Adds a check from a supplier that answers true when fine, with a fixed reason otherwise. */
  public void register(String name, Supplier<Boolean> ok, String reason) {
    register(name, () -> ok.get() ? Optional.empty() : Optional.of(reason));
  }

  void start(@Observes StartupEvent e) {
    scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "readiness");
      t.setDaemon(true);
      return t;
    });
    long ms = config.checkInterval().toMillis();
    scheduler.scheduleWithFixedDelay(this::evaluate, 0, ms, TimeUnit.MILLISECONDS);
  }

  void stop(@Observes ShutdownEvent e) {
    if (scheduler != null) scheduler.shutdownNow();
    meters.removeAll();
  }

  /** Runs every check now and sets the health status; returns the problems (empty: ready). */
  public synchronized Map<String, String> evaluate() {
    for (Map.Entry<String, Check> c : checks.entrySet()) {
      Optional<String> p;
      try {
        p = c.getValue().problem();
      } catch (RuntimeException ex) {
        p = Optional.of(String.valueOf(ex.getMessage()));
      }
      String before = problems.get(c.getKey());
      if (p.isPresent()) {
        problems.put(c.getKey(), p.get());
        if (!p.get().equals(before)) LOG.warnf("not ready: %s: %s", c.getKey(), p.get());
      } else if (before != null) {
        problems.remove(c.getKey());
        LOG.infof("%s is back (%s had failed)", c.getKey(), before);
      }
    }
    StringBuilder b = new StringBuilder();
    problems.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(en -> {
      if (b.length() > 0) b.append("; ");
      b.append(en.getKey()).append(": ").append(en.getValue());
    });
    summary = b.toString().replaceAll("[^\\x20-\\x7e]", "?");
    ServingStatus status = problems.isEmpty() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    if (storage.getStatuses().get("") != status) storage.setStatus("", status);
    if (storage.getStatuses().get("readiness") != status) storage.setStatus("readiness", status);
    return Map.copyOf(problems);
  }

  /** Why the service is not ready ("" when it is). */
  public String summary() {
    return summary;
  }
}

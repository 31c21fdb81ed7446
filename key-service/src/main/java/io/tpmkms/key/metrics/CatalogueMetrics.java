package io.tpmkms.key.metrics;

import io.agroal.api.AgroalDataSource;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.scheduler.Scheduled;
import io.tpmkms.key.lifecycle.KeyVersionState;
import jakarta.enterprise.context.ApplicationScoped;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * The key catalogue's meters (issue 18), counted from the database every
 * {@code tpmkms.metrics.catalogue-interval} (so a scrape costs no query, and every replica
 * reports the shared catalogue): {@code tpmkms_keys{purpose}}, {@code tpmkms_key_versions{state}},
 * {@code tpmkms_key_rotations_due} and {@code tpmkms_key_version_destructions_due} (overdue now:
 * the scheduler has not got to them yet); and this replica's {@code
 * tpmkms_key_rotations_total{trigger="scheduled"}} and {@code tpmkms_key_version_destructions_total}.
 * Labels are enums: never a key name or namespace.
 */
@ApplicationScoped
public class CatalogueMetrics {
  private static final Logger LOG = Logger.getLogger(CatalogueMetrics.class);
  private static final String[] PURPOSES = java.util.Arrays.stream(io.tpmkms.key.lifecycle.KeyPurpose.values())
      .map(Enum::name).toArray(String[]::new);

  private final AgroalDataSource db;
  private final Map<String, Double> keys = new ConcurrentHashMap<>();
  private final Map<KeyVersionState, Double> versions = new EnumMap<>(KeyVersionState.class);
  private volatile double rotationsDue = Double.NaN;
  private volatile double destructionsDue = Double.NaN;
  private boolean failing;
  private final Counter rotations;
  private final Counter destructions;
  private final io.tpmkms.platform.metrics.Meters meters;

  public CatalogueMetrics(AgroalDataSource db, MeterRegistry registry) {
    this.db = db;
    this.meters = new io.tpmkms.platform.metrics.Meters(registry);
    for (String p : PURPOSES) {
      keys.put(p, Double.NaN);
      meters.add(Gauge.builder("tpmkms.keys", keys, m -> m.getOrDefault(p, Double.NaN)).tag("purpose", p)
          .description("keys in the catalogue, by purpose").register(registry));
    }
    for (KeyVersionState s : KeyVersionState.values()) {
      versions.put(s, Double.NaN);
      meters.add(Gauge.builder("tpmkms.key.versions", this, m -> m.version(s)).tag("state", s.name())
          .description("key versions in the catalogue, by state").register(registry));
    }
    meters.add(Gauge.builder("tpmkms.key.rotations.due", this, m -> m.rotationsDue)
        .description("keys whose scheduled rotation time has passed and that are not rotated yet").register(registry));
    meters.add(Gauge.builder("tpmkms.key.version.destructions.due", this, m -> m.destructionsDue)
        .description("versions whose scheduled destruction time has passed and that are not destroyed yet")
        .register(registry));
    rotations = meters.add(Counter.builder("tpmkms.key.rotations").tag("trigger", "scheduled")
        .description("rotations this replica performed").register(registry));
    destructions = meters.add(Counter.builder("tpmkms.key.version.destructions")
        .description("scheduled destructions this replica performed").register(registry));
  }

  @jakarta.annotation.PreDestroy
  void unregister() {
    meters.removeAll();
  }

  private double version(KeyVersionState s) {
    synchronized (versions) {
      return versions.getOrDefault(s, Double.NaN);
    }
  }

  /** A scheduled rotation happened on this replica. */
  public void rotated() {
    rotations.increment();
  }

  /** Scheduled destructions happened on this replica. */
  public void destroyed(int n) {
    if (n > 0) destructions.increment(n);
  }

  @Scheduled(every = "${tpmkms.metrics.catalogue-interval:15s}", delay = 0,
      concurrentExecution = Scheduled.ConcurrentExecution.SKIP)
  public synchronized void count() {
    try (Connection c = db.getConnection()) {
      Map<String, Double> k = new java.util.HashMap<>();
      for (String p : PURPOSES) k.put(p, 0.0);
      try (PreparedStatement ps = c.prepareStatement("SELECT purpose, count(*) FROM kms_key GROUP BY purpose");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) k.put(rs.getString(1), (double) rs.getLong(2));
      }
      Map<KeyVersionState, Double> v = new EnumMap<>(KeyVersionState.class);
      for (KeyVersionState s : KeyVersionState.values()) v.put(s, 0.0);
      try (PreparedStatement ps = c.prepareStatement("SELECT state, count(*) FROM kms_key_version GROUP BY state");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) v.put(KeyVersionState.valueOf(rs.getString(1)), (double) rs.getLong(2));
      }
      double rDue;
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT count(*) FROM kms_key WHERE next_rotation_time IS NOT NULL AND next_rotation_time <= now()");
          ResultSet rs = ps.executeQuery()) {
        rDue = rs.next() ? rs.getLong(1) : Double.NaN;
      }
      double dDue;
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT count(*) FROM kms_key_version WHERE state = 'DESTROY_SCHEDULED' AND destroy_time <= now()");
          ResultSet rs = ps.executeQuery()) {
        dDue = rs.next() ? rs.getLong(1) : Double.NaN;
      }
      for (String p : PURPOSES) keys.put(p, k.getOrDefault(p, 0.0));
      synchronized (versions) {
        versions.putAll(v);
      }
      rotationsDue = rDue;
      destructionsDue = dDue;
      failing = false;
    } catch (Exception e) {
      if (!failing) LOG.warnf("cannot count the catalogue for the metrics (%s); the gauges keep their last values",
          e.getMessage());
      failing = true;
      return;
    }
  }
}

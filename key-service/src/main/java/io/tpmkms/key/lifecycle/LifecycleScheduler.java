package io.tpmkms.key.lifecycle;

import io.quarkus.scheduler.Scheduled;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * Runs scheduled rotation and scheduled destruction on every replica. Safe
 * with any number of replicas on one database: each due key or version is
 * claimed with a row lock ({@code FOR UPDATE SKIP LOCKED}) and its condition
 * re-checked under that lock, so each due event happens exactly once.
 */
@ApplicationScoped
public class LifecycleScheduler {
  private static final Logger LOG = Logger.getLogger(LifecycleScheduler.class);
  private static final int BATCH = 50;

  private final KeyLifecycleService lifecycle;
  private final io.tpmkms.key.metrics.CatalogueMetrics metrics;

  public LifecycleScheduler(KeyLifecycleService lifecycle, io.tpmkms.key.metrics.CatalogueMetrics metrics) {
    this.lifecycle = lifecycle;
    this.metrics = metrics;
  }

  @Scheduled(every = "${tpmkms.rotation.check-interval}", delayed = "1s",
      concurrentExecution = Scheduled.ConcurrentExecution.SKIP)
  void rotateDueKeys() {
    List<Long> due;
    try {
      due = lifecycle.dueForRotation(BATCH);
    } catch (RuntimeException e) {
      LOG.warnf(e, "cannot list keys due for rotation; the next pass retries");
      return;
    }
    for (Long id : due) {
      try {
        if (lifecycle.rotateIfDue(id)) metrics.rotated();
      } catch (RuntimeException e) {
        // one failing key must not stall the others; it stays due and is retried next pass
        LOG.warnf(e, "scheduled rotation of key id %d failed; the next pass retries", id);
      }
    }
  }

  @Scheduled(every = "${tpmkms.destruction.check-interval}", delayed = "1s",
      concurrentExecution = Scheduled.ConcurrentExecution.SKIP)
  void destroyDueVersions() {
    try {
      int n;
      do {
        n = lifecycle.destroyDueVersions(BATCH);
        metrics.destroyed(n);
      } while (n == BATCH); // more are due: keep going
    } catch (RuntimeException e) {
      LOG.warnf(e, "scheduled destruction pass failed; the next pass retries");
    }
  }
}

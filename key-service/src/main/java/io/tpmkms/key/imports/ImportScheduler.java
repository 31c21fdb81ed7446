package io.tpmkms.key.imports;

import io.quarkus.scheduler.Scheduled;
import jakarta.enterprise.context.ApplicationScoped;
import org.jboss.logging.Logger;

/**
 * Runs import-job housekeeping on every replica, like the
 * {@link io.tpmkms.key.lifecycle.LifecycleScheduler}: expires due jobs and
 * generates the wrapping keys of jobs whose generation was lost. Each job is
 * claimed with a row lock ({@code FOR UPDATE SKIP LOCKED}) and its condition
 * re-checked under it, so each happens exactly once with any number of replicas.
 */
@ApplicationScoped
public class ImportScheduler {
  private static final Logger LOG = Logger.getLogger(ImportScheduler.class);

  private final ImportService imports;

  public ImportScheduler(ImportService imports) {
    this.imports = imports;
  }

  @Scheduled(every = "${tpmkms.imports.check-interval}", delayed = "1s",
      concurrentExecution = Scheduled.ConcurrentExecution.SKIP)
  void housekeeping() {
    try {
      while (imports.expireDue() == 50) {
        // more are due: keep going
      }
    } catch (RuntimeException e) {
      LOG.warnf(e, "import job expiry pass failed; the next pass retries");
    }
    try {
      imports.regenerateLost();
    } catch (RuntimeException e) {
      LOG.warnf(e, "import job generation pass failed; the next pass retries");
    }
  }
}

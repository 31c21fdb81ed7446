package io.tpmkms.tls;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Checks TLS files for changes every {@code interval} on one daemon thread and swaps in what
 * changed ({@link Reloadable#reloadIfChanged()}): cert-manager renewing a certificate, a
 * Kubernetes Secret's volume being updated (an atomic symlink swap), an operator copying files.
 * Files are compared by content, not by time stamp. A change that cannot be used yet (a key
 * written before its certificate) is logged and tried again at the next check, while the
 * material in use stays in use; the same problem is logged once, not at every check.
 */
public final class CertificateReloader implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(CertificateReloader.class);

  private final List<Reloadable> watched = new CopyOnWriteArrayList<>();
  private final ScheduledExecutorService timer;
  private final java.util.Map<Reloadable, String> lastProblem = new java.util.concurrent.ConcurrentHashMap<>();

  public CertificateReloader(Duration interval) {
    if (interval.isNegative() || interval.isZero()) {
      throw new IllegalArgumentException("the TLS reload interval must be positive, not " + interval);
    }
    timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "tpmkms-tls-reload");
      t.setDaemon(true);
      return t;
    });
    long ms = interval.toMillis();
    timer.scheduleWithFixedDelay(this::checkAll, ms, ms, TimeUnit.MILLISECONDS);
  }

  /** Watches {@code r} from now on and returns it. */
  public <R extends Reloadable> R watch(R r) {
    watched.add(r);
    return r;
  }

  /** One check of every watched file (also what the timer runs); never throws. */
  public void checkAll() {
    for (Reloadable r : watched) {
      try {
        if (r.reloadIfChanged()) {
          lastProblem.remove(r);
          if (r instanceof ReloadingKeyManager km) {
            var c = km.certificate();
            LOG.infof("TLS: reloaded %s: now serving subject '%s', serial %s, valid until %s", r.description(),
                c.getSubjectX500Principal().getName(), c.getSerialNumber().toString(16), c.getNotAfter().toInstant());
          } else {
            LOG.infof("TLS: reloaded %s", r.description());
          }
        } else {
          lastProblem.remove(r);
        }
      } catch (RuntimeException e) {
        String problem = e.getMessage();
        if (!problem.equals(lastProblem.put(r, problem))) {
          LOG.warnf("TLS: %s changed but cannot be used yet, keeping the one in use: %s", r.description(), problem);
        }
      }
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}

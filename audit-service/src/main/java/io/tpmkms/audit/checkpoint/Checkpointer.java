package io.tpmkms.audit.checkpoint;

import io.quarkus.runtime.Startup;
import io.tpmkms.audit.AuditConfig;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.chain.Canonical;
import io.tpmkms.audit.chain.ChainHead;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.sql.SQLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.jboss.logging.Logger;

/**
 * Makes a checkpoint every {@code tpmkms.audit.checkpoint.every-records}
 * records, or every {@code interval} when there is at least one new record:
 * the committed chain head is signed ({@link CheckpointAuthority}), stored, and
 * with a TPM extended into the NV index.
 *
 * <p>Order of effects, tpm-nv: the row is stored first, with the NV value the
 * extend WILL produce ({@code SHA-256(previous value || head_hash)}), then the
 * index is extended. A crash (or TPM outage) between the two leaves the NV one
 * step behind the last row; {@link #reconcile} finds exactly that case (NV
 * equals the value before the last checkpoint) and completes the extend
 * before the next checkpoint and at start. Any other mismatch is never
 * "repaired": it is logged and VerifyChain reports it.
 *
 * <p>Threading: one scheduler thread makes checkpoints; {@link #snapshot}
 * takes the same lock, so a verifier sees checkpoints and NV value from one
 * moment.
 */
@Startup
@ApplicationScoped
public class Checkpointer {
  private static final Logger LOG = Logger.getLogger(Checkpointer.class);
  private static final HexFormat HEX = HexFormat.of();

  private final AuditWriter writer;
  private final CheckpointStore store;
  private final CheckpointAuthority authority;
  private final int everyRecords;
  private final long intervalNanos;
  private final ReentrantLock lock = new ReentrantLock();
  private final ScheduledExecutorService scheduler;
  private volatile long lastSequence;
  private long lastTime = System.nanoTime();
  /** Wall-clock time of the latest checkpoint, for its age in the metrics; 0 before the first. */
  private volatile long lastEpochSeconds;
  private final java.util.concurrent.atomic.AtomicLong failures = new java.util.concurrent.atomic.AtomicLong();
  private boolean failing;

  public Checkpointer(AuditWriter writer, CheckpointStore store, CheckpointAuthority authority, AuditConfig config) {
    this.writer = writer;
    this.store = store;
    this.authority = authority;
    this.everyRecords = config.audit().checkpoint().everyRecords();
    this.intervalNanos = config.audit().checkpoint().interval().toNanos();
    if (everyRecords < 1) throw new IllegalArgumentException("tpmkms.audit.checkpoint.every-records must be >= 1");
    try {
      Optional<Checkpoint> latest = store.latest();
      lastSequence = latest.map(Checkpoint::sequence).orElse(0L);
      lastEpochSeconds = latest.map(Checkpoint::seconds).orElse(0L);
      if (authority.anchorValue().isPresent()) reconcile();
    } catch (SQLException e) {
      throw new IllegalStateException("cannot read the audit checkpoints", e);
    }
    scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "audit-checkpointer");
      t.setDaemon(true);
      return t;
    });
    long tick = Math.max(20, Math.min(250, TimeUnit.NANOSECONDS.toMillis(intervalNanos) / 4));
    scheduler.scheduleWithFixedDelay(this::tick, tick, tick, TimeUnit.MILLISECONDS);
  }

  private void tick() {
    try {
      long head = writer.committedSequence();
      if (head <= lastSequence) return;
      if (head - lastSequence >= everyRecords || System.nanoTime() - lastTime >= intervalNanos) checkpointNow();
      if (failing) LOG.info("checkpoints are made again");
      failing = false;
    } catch (Throwable t) {
      failures.incrementAndGet();
      if (!failing) LOG.warnf("cannot make a checkpoint (retrying): %s", t.toString());
      failing = true;
    }
  }

  /**
   * Signs, stores and anchors the current committed head if it is newer than
   * the last checkpoint.
   *
   * @return the new checkpoint, or empty if there was nothing new
   */
  public Optional<Checkpoint> checkpointNow() throws SQLException {
    lock.lock();
    try {
      boolean tpmNv = Checkpoint.ANCHOR_TPM_NV.equals(authority.anchor());
      if (tpmNv) reconcile();
      ChainHead head = writer.readHead();
      Optional<Checkpoint> last = store.latest();
      if (head.sequence() <= last.map(Checkpoint::sequence).orElse(0L)) return Optional.empty();
      Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);
      String anchor = authority.anchor();
      byte[] anchorValue = tpmNv ? Canonical.extend(lastNvValue(store.all()), head.hash()) : new byte[0];
      byte[] canonical = Canonical.checkpoint(head.sequence(), head.hash(), now.getEpochSecond(), now.getNano(), anchor);
      Checkpoint cp = new Checkpoint(head.sequence(), head.hash(), now.getEpochSecond(), now.getNano(),
          authority.sign(canonical), authority.publicKeyPem(), anchor, anchorValue);
      store.insert(cp);
      lastSequence = cp.sequence();
      lastTime = System.nanoTime();
      lastEpochSeconds = cp.seconds();
      if (tpmNv) {
        authority.extend(head.hash());
        byte[] nv = authority.anchorValue().orElseThrow();
        if (!Arrays.equals(nv, anchorValue)) {
          LOG.errorf("TPM NV index 0x%08x holds %s after extending checkpoint %d, expected %s: the index was "
              + "extended by someone else", authority.nvIndex(), HEX.formatHex(nv), cp.sequence(),
              HEX.formatHex(anchorValue));
        }
      }
      LOG.debugf("checkpoint at sequence %d (%s)", cp.sequence(), anchor);
      return Optional.of(cp);
    } finally {
      lock.unlock();
    }
  }

  /** The sequence of the latest checkpoint (0 before the first). */
  public long lastSequence() { return lastSequence; }

  /** When the latest checkpoint was made, Unix seconds (0 before the first). */
  public long lastEpochSeconds() { return lastEpochSeconds; }

  /** Failed checkpoint attempts since start (each is retried). */
  public long failures() { return failures.get(); }

  /** All checkpoints and the NV value now, read under the checkpoint lock (one consistent moment). */
  public Snapshot snapshot() throws SQLException {
    lock.lock();
    try {
      return new Snapshot(store.all(), authority.anchorValue());
    } finally {
      lock.unlock();
    }
  }

  /** What a verifier compares: the checkpoints and the TPM's NV value (empty without a TPM). */
  public record Snapshot(List<Checkpoint> checkpoints, Optional<byte[]> nvValue) {}

  /**
   * Completes an extend that a crash or TPM outage interrupted: if the NV
   * value equals the value before the last tpm-nv checkpoint, extend that
   * checkpoint's head. Anything else that does not match is logged, never
   * written over.
   */
  private void reconcile() throws SQLException {
    List<Checkpoint> all = store.all();
    List<Checkpoint> nvCheckpoints = all.stream().filter(c -> Checkpoint.ANCHOR_TPM_NV.equals(c.anchor())).toList();
    byte[] nv = authority.anchorValue().orElseThrow();
    byte[] expected = lastNvValue(all);
    if (Arrays.equals(nv, expected)) return;
    if (!nvCheckpoints.isEmpty()) {
      Checkpoint last = nvCheckpoints.get(nvCheckpoints.size() - 1);
      byte[] before = lastNvValue(nvCheckpoints.subList(0, nvCheckpoints.size() - 1));
      if (Arrays.equals(nv, before) && Arrays.equals(Canonical.extend(before, last.headHash()), last.anchorValue())) {
        LOG.infof("completing the interrupted NV extend of checkpoint %d", last.sequence());
        authority.extend(last.headHash());
        return;
      }
    }
    LOG.errorf("TPM NV index 0x%08x holds %s but the audit database's checkpoints lead to %s: checkpoints were "
        + "removed or altered, the database was replaced, or the index was extended by someone else. VerifyChain "
        + "reports it; docs/audit.md says what to do", authority.nvIndex(), HEX.formatHex(nv), HEX.formatHex(expected));
  }

  /** The NV value the tpm-nv checkpoints lead to: the chain of extends from 32 zero bytes. */
  static byte[] lastNvValue(List<Checkpoint> checkpoints) {
    byte[] v = Canonical.genesis();
    for (Checkpoint c : checkpoints) {
      if (Checkpoint.ANCHOR_TPM_NV.equals(c.anchor())) v = Canonical.extend(v, c.headHash());
    }
    return v;
  }

  @PreDestroy
  void stop() {
    scheduler.shutdownNow();
    try {
      scheduler.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

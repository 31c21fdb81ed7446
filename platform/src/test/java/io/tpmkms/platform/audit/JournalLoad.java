package io.tpmkms.platform.audit;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;

/**
 * A by-hand load of the journal alone (not a test): {@code slots} calls always in flight, spread
 * over {@code loops} single-threaded executors standing in for the gRPC event loops; each call
 * appends a 260-byte event and, once it is durable, the next call starts on its loop. Logs
 * events/s, group commits/s and CPU per event of each thread, to tune the writer without a whole
 * benchmark run. Run: {@code java -cp ... io.tpmkms.platform.audit.JournalLoad [slots] [loops] [seconds] [interval-ms]};
 * {@code -Djournal.on-loop=true} completes each event on its loop (as the key service does for calls
 * on its event loops); {@code -Djournal.rate=N} replaces the slots by a steady N events/s (open loop;
 * completions on the completion thread).
 */
public final class JournalLoad {
  private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(JournalLoad.class);
  /** -Djournal.on-loop=true: durable events are completed on their loop (as the key service's event loops do). */
  private static final boolean ON_LOOP = Boolean.getBoolean("journal.on-loop");
  /** -Djournal.rate=N: instead of closed-loop slots, the loops together append N events/s, evenly spread. */
  private static final int RATE = Integer.getInteger("journal.rate", 0);

  public static void main(String[] args) throws Exception {
    int slots = args.length > 0 ? Integer.parseInt(args[0]) : 128;
    int loops = args.length > 1 ? Integer.parseInt(args[1]) : 4;
    int seconds = args.length > 2 ? Integer.parseInt(args[2]) : 10;
    long intervalMs = args.length > 3 ? Long.parseLong(args[3]) : 2;
    Path dir = Files.createTempDirectory("journal-load-");
    AuditJournal journal = AuditJournal.open(dir, 64L << 20, 1L << 30, Duration.ofMillis(intervalMs));
    ExecutorService[] loop = new ExecutorService[loops];
    for (int i = 0; i < loops; i++) {
      int n = i;
      loop[i] = Executors.newSingleThreadExecutor(r -> new Thread(r, "loop-" + n));
    }
    byte[] payload = new byte[260];
    AtomicBoolean on = new AtomicBoolean(true);
    LongAdder done = new LongAdder();
    if (RATE > 0) {
      // open loop: every loop appends at a steady rate whatever the syncs do (arrivals never pause)
      long periodNanos = (long) (1e9 * loops / RATE);
      for (ExecutorService l : loop) {
        l.execute(() -> {
          long next = System.nanoTime();
          while (on.get()) {
            journal.append(payload).whenComplete((ok, e) -> done.increment()); // this loop never yields
            next += periodNanos;
            long wait = next - System.nanoTime();
            if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
          }
        });
      }
      slots = 0;
    }
    for (int s = 0; s < slots; s++) {
      ExecutorService l = loop[s % loops];
      l.execute(new Runnable() {
        @Override
        public void run() {
          if (!on.get()) return;
          journal.append(payload, ON_LOOP ? l : null).whenComplete((ok, e) -> {
            if (e != null) {
              LOG.error("append failed; load stopped", e);
              on.set(false);
              return;
            }
            done.increment();
            if (ON_LOOP) run(); else l.execute(this);
          });
        }
      });
    }
    Thread.sleep(2_000); // warm-up
    Map<String, Long> cpu0 = threadCpu();
    long d0 = done.sum();
    long s0 = journal.syncs();
    long t0 = System.nanoTime();
    Thread.sleep(seconds * 1000L);
    long t1 = System.nanoTime();
    Map<String, Long> cpu1 = threadCpu();
    long events = done.sum() - d0;
    long syncs = journal.syncs() - s0;
    on.set(false);
    double secs = (t1 - t0) / 1e9;
    LOG.infof("%s", String.format(Locale.ROOT, "%s loops %d interval %d ms: %,.0f events/s, %,.0f commits/s, %.1f events/commit",
        RATE > 0 ? "steady " + RATE + "/s" : "slots " + slots, loops, intervalMs, events / secs, syncs / secs,
        (double) events / Math.max(1, syncs)));
    long total = 0;
    for (var e : cpu1.entrySet()) {
      long dv = e.getValue() - cpu0.getOrDefault(e.getKey(), 0L);
      total += dv;
      if (dv > 0) LOG.infof("%s", String.format(Locale.ROOT, "  %-24s %6.2f µs/event", e.getKey(), dv / 1e3 / events));
    }
    LOG.infof("%s", String.format(Locale.ROOT, "  %-24s %6.2f µs/event", "all threads", total / 1e3 / events));
    for (ExecutorService l : loop) l.shutdownNow();
    journal.close();
    System.exit(0);
  }

  private static Map<String, Long> threadCpu() {
    var mx = ManagementFactory.getThreadMXBean();
    Map<String, Long> out = new TreeMap<>();
    for (var info : mx.getThreadInfo(mx.getAllThreadIds())) {
      if (info == null) continue;
      long t = mx.getThreadCpuTime(info.getThreadId());
      if (t > 0) out.merge(info.getThreadName().replaceAll("\\d+$", "N"), t, Long::sum);
    }
    return out;
  }
}

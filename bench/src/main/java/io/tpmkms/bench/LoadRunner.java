package io.tpmkms.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * Closed-loop load: N threads, each calling its {@link Workload.Operation} back to back. All
 * threads run through a warm-up, then a timed window; throughput counts the operations that
 * started inside the window, latency is recorded per operation in a per-thread HdrHistogram
 * (no shared state on the hot path) and merged at the end.
 *
 * <p>Every failure, in warm-up or in the window, counts as an error; after the window each thread's
 * last output is checked with {@link Workload.Operation#verifyLast()}, and a failed check counts too.
 */
final class LoadRunner {

    private static final long HIGHEST_TRACKABLE_NANOS = TimeUnit.SECONDS.toNanos(60);

    private static final int WARMUP = 0;
    private static final int MEASURE = 1;
    private static final int STOP = 2;

    private final Duration warmup;
    private final Duration window;

    LoadRunner(Duration warmup, Duration window) {
        this.warmup = warmup;
        this.window = window;
    }

    Measurement run(Workload workload, int threads) throws Exception {
        List<Workload.Operation> ops = new ArrayList<>(threads);
        for (int i = 0; i < threads; i++) {
            ops.add(workload.newOperation(i, threads));
        }
        Phase phase = new Phase();
        CountDownLatch ready = new CountDownLatch(threads);
        Client[] clients = new Client[threads];
        for (int i = 0; i < threads; i++) {
            clients[i] = new Client(ops.get(i), phase, ready);
            clients[i].thread = new Thread(clients[i], "bench-" + workload.id() + "-" + i);
            clients[i].thread.setDaemon(true);
            clients[i].thread.start();
        }
        ready.await();
        sleep(warmup);
        phase.value = MEASURE;
        long start = System.nanoTime();
        sleep(window);
        phase.value = STOP;
        long end = System.nanoTime();
        for (Client c : clients) {
            c.thread.join(TimeUnit.SECONDS.toMillis(90));
            if (c.thread.isAlive()) {
                throw new IllegalStateException(c.thread.getName() + " did not finish its last operation in 90 s");
            }
        }

        Histogram latency = new Histogram(HIGHEST_TRACKABLE_NANOS, 3);
        long operations = 0;
        long errors = 0;
        String firstError = null;
        for (Client c : clients) {
            latency.add(c.latency);
            operations += c.operations;
            errors += c.errors;
            if (firstError == null) {
                firstError = c.firstError;
            }
            try {
                c.operation.verifyLast();
            } catch (Exception e) {
                errors++;
                if (firstError == null) {
                    firstError = "sample check: " + describe(e);
                }
            }
        }
        return new Measurement(workload.id(), workload.description(), threads, operations,
                (end - start) / 1e9,
                latency.getTotalCount() == 0 ? 0 : latency.getValueAtPercentile(50) / 1e3,
                latency.getTotalCount() == 0 ? 0 : latency.getValueAtPercentile(99) / 1e3,
                errors, firstError);
    }

    static String describe(Throwable e) {
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }

    private static void sleep(Duration d) throws InterruptedException {
        TimeUnit.NANOSECONDS.sleep(d.toNanos());
    }

    private static final class Phase {
        volatile int value = WARMUP;
    }

    private static final class Client implements Runnable {
        final Workload.Operation operation;
        final Phase phase;
        final CountDownLatch ready;
        final Histogram latency = new Histogram(HIGHEST_TRACKABLE_NANOS, 3);
        Thread thread;
        long operations;
        long errors;
        String firstError;

        Client(Workload.Operation operation, Phase phase, CountDownLatch ready) {
            this.operation = operation;
            this.phase = phase;
            this.ready = ready;
        }

        @Override
        public void run() {
            ready.countDown();
            int p;
            while ((p = phase.value) != STOP) {
                long t0 = System.nanoTime();
                try {
                    operation.run();
                } catch (Throwable e) {
                    errors++;
                    if (firstError == null) {
                        firstError = describe(e);
                    }
                    continue;
                }
                long elapsed = System.nanoTime() - t0;
                if (p == MEASURE) {
                    latency.recordValue(Math.min(elapsed, HIGHEST_TRACKABLE_NANOS));
                    operations++;
                }
            }
        }
    }
}

package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.tpmkms.proto.audit.v1.AppendEventsRequest;
import io.tpmkms.proto.audit.v1.AppendEventsResponse;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditRecord;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.audit.v1.Decision;
import io.tpmkms.proto.audit.v1.QueryRecordsRequest;
import io.tpmkms.proto.audit.v1.QueryRecordsResponse;
import io.tpmkms.proto.audit.v1.VerifyChainRequest;
import io.tpmkms.proto.audit.v1.VerifyChainResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Calls to one running audit service, over a small pool of channels (client thread {@code i} of
 * {@code n} uses channel {@code i % min(n, channels)}, as {@link GrpcWorkloads}).
 *
 * <p>The appended events look like the key service's (about the same field sizes): fresh random
 * UUID event ids, service {@value #SERVICE}, keys {@code bench-append/key-NN}, so they never match the
 * key service's own records of {@code bench/aes} when those are counted. Every acknowledgement is
 * checked: one sequence per event, consecutive within the request (the service's order guarantee).
 * The highest sequence acknowledged so far is kept, so the chain length is known without asking.
 */
final class AuditWorkloads implements AutoCloseable {

    static final String SERVICE = "tpmkms-bench";
    static final String ENCRYPT_OPERATION_SUFFIX = "/Encrypt";

    private static final long APPEND_DEADLINE_SECONDS = 30;
    private static final long VERIFY_DEADLINE_SECONDS = 300;

    private final ManagedChannel[] channels;
    private final int batch;
    private final AtomicLong head = new AtomicLong();

    AuditWorkloads(String target, int channelCount, int batch) {
        if (batch < 1 || batch > 1000) {
            throw new IllegalArgumentException("batch must be 1..1000 events (the service's limit), got " + batch);
        }
        this.batch = batch;
        channels = new ManagedChannel[channelCount];
        for (int i = 0; i < channelCount; i++) {
            channels[i] = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
                    .userAgent("tpmkms-bench")
                    .maxInboundMessageSize(16 * 1024 * 1024)
                    .build();
        }
    }

    int batch() {
        return batch;
    }

    /** The highest sequence any AppendEvents of this object was answered with: the chain length. */
    long head() {
        return head.get();
    }

    /** AppendEvents of {@link #batch()} new events per call; one operation is one request. */
    Workload append() {
        return new Workload() {
            @Override
            public String id() {
                return "audit-append";
            }

            @Override
            public String description() {
                return "AuditService/AppendEvents, " + batch + " events per request";
            }

            @Override
            public Operation newOperation(int thread, int threads) {
                ManagedChannel channel = channelFor(thread, threads);
                return () -> appendBatch(channel, batch);
            }
        };
    }

    /**
     * Appends until the chain holds {@code targetRecords} records (the last request may be shorter),
     * from {@code threads} client threads.
     *
     * @return records appended by this call, seconds it took, errors
     */
    Growth grow(long targetRecords, int threads) throws InterruptedException {
        long toAppend = Math.max(0, targetRecords - head());
        AtomicLong claimed = new AtomicLong();
        AtomicLong appended = new AtomicLong();
        AtomicLong errors = new AtomicLong();
        AtomicReference<String> firstError = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int i = 0; i < threads; i++) {
            ManagedChannel channel = channelFor(i, threads);
            Thread t = new Thread(() -> {
                while (errors.get() == 0) {
                    long from = claimed.getAndAdd(batch);
                    if (from >= toAppend) {
                        return;
                    }
                    int n = (int) Math.min(batch, toAppend - from);
                    try {
                        appendBatch(channel, n);
                        appended.addAndGet(n);
                    } catch (Throwable e) {
                        errors.incrementAndGet();
                        firstError.compareAndSet(null, LoadRunner.describe(e));
                    }
                }
            }, "bench-audit-grow-" + i);
            t.setDaemon(true);
            t.start();
            workers.add(t);
        }
        for (Thread t : workers) {
            t.join();
        }
        return new Growth(threads, appended.get(), (System.nanoTime() - t0) / 1e9, head(), errors.get(), firstError.get());
    }

    /** Records appended to reach the verify size: how many, how long, the chain length after. */
    record Growth(int threads, long records, double seconds, long chainLength, long errors, String firstError) {
        double recordsPerSecond() {
            return seconds <= 0 ? 0 : records / seconds;
        }
    }

    /** VerifyChain over {@code [from, to]} (0, 0: the whole chain), timed by the client. */
    Verification verify(long from, long to) {
        long t0 = System.nanoTime();
        VerifyChainResponse r = stub(channels[0], VERIFY_DEADLINE_SECONDS)
                .verifyChain(VerifyChainRequest.newBuilder().setFromSequence(from).setToSequence(to).build());
        return new Verification(r, (System.nanoTime() - t0) / 1e9);
    }

    /** One VerifyChain answer and how long the call took. */
    record Verification(VerifyChainResponse response, double seconds) {
        double recordsPerSecond() {
            return seconds <= 0 ? 0 : response.getRecordsChecked() / seconds;
        }
    }

    /**
     * Waits until the chain head is at least {@code minHead} and has not moved for {@code quiet}
     * (the key service's forwarder waits 50 ms for more events once caught up), at most {@code timeout}.
     * Polls VerifyChain from the last head seen, so each poll checks only the new records. Each poll
     * is itself recorded after it has read (ADR 0023), so a head one past the last poll's is the
     * previous poll's own record, not a forwarded one: that counts as quiet.
     *
     * @param from a sequence in the chain to start from
     */
    QuietHead awaitQuietHead(long from, long minHead, Duration quiet, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long last = -1;
        long since = System.nanoTime();
        long start = Math.max(1, from);
        while (true) {
            VerifyChainResponse r = verify(start, 0).response();
            if (!r.getValid()) {
                throw new IllegalStateException("VerifyChain from " + start + " failed: " + r.getProblem());
            }
            long h = r.getHeadSequence();
            long now = System.nanoTime();
            if (h != last && h != last + 1) {
                last = h;
                since = now;
                start = Math.max(1, h);
            } else {
                last = h; // unchanged, or only the previous poll's own record
                if (h >= minHead && now - since >= quiet.toNanos()) {
                    return new QuietHead(h, since);
                }
            }
            if (now > deadline) {
                return new QuietHead(h, since);
            }
            TimeUnit.MILLISECONDS.sleep(100);
        }
    }

    /** The chain head and when (System.nanoTime) it was first seen at that value. */
    record QuietHead(long head, long reachedNanos) {
    }

    /**
     * Pages through QueryRecords for one key and counts its records: all of them, and those of a
     * successful Encrypt ({@code operation} ending in {@value #ENCRYPT_OPERATION_SUFFIX}, outcome OK).
     */
    KeyRecords countRecords(String key) {
        long all = 0;
        long encryptOk = 0;
        String token = "";
        do {
            QueryRecordsResponse page = stub(channels[0], APPEND_DEADLINE_SECONDS).queryRecords(
                    QueryRecordsRequest.newBuilder().setKey(key).setPageSize(1000).setPageToken(token).build());
            for (AuditRecord r : page.getRecordsList()) {
                all++;
                if (r.getEvent().getOperation().endsWith(ENCRYPT_OPERATION_SUFFIX) && r.getEvent().getOutcome().equals("OK")) {
                    encryptOk++;
                }
            }
            token = page.getNextPageToken();
        } while (!token.isEmpty());
        return new KeyRecords(all, encryptOk);
    }

    record KeyRecords(long all, long encryptOk) {
    }

    private void appendBatch(ManagedChannel channel, int n) {
        AppendEventsRequest request = request(n);
        AppendEventsResponse r = stub(channel, APPEND_DEADLINE_SECONDS).appendEvents(request);
        if (r.getSequencesCount() != n) {
            throw new IllegalStateException("AppendEvents answered " + r.getSequencesCount() + " sequences for " + n + " events");
        }
        long first = r.getSequences(0);
        for (int i = 0; i < n; i++) {
            if (r.getSequences(i) != first + i || first < 1) {
                throw new IllegalStateException("AppendEvents answered non-consecutive sequences " + r.getSequencesList());
            }
        }
        head.accumulateAndGet(first + n - 1, Math::max);
    }

    private static AppendEventsRequest request(int n) {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        Instant now = Instant.now();
        Timestamp time = Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()).build();
        AppendEventsRequest.Builder b = AppendEventsRequest.newBuilder();
        byte[] digest = new byte[32];
        for (int i = 0; i < n; i++) {
            random.nextBytes(digest);
            int k = random.nextInt(100);
            b.addEvents(AuditEvent.newBuilder()
                    .setEventId(randomUuid(random))
                    .setTime(time)
                    .setService(SERVICE)
                    .setPrincipal("bench-principal-" + (k % 50))
                    .setClient("127.0.0.1:5555")
                    .setOperation("tpmkms.key.v1.KeyService/Encrypt")
                    .setKey("bench-append/key-" + k)
                    .setKeyVersion(1)
                    .setDecision(Decision.NOT_EVALUATED)
                    .setOutcome("OK")
                    .setRequestId(randomUuid(random))
                    .setRequestDigest(ByteString.copyFrom(digest)));
        }
        return b.build();
    }

    /** A version-4 UUID from a fast (non-cryptographic) generator: ids only need to be unique. */
    private static String randomUuid(ThreadLocalRandom random) {
        long msb = (random.nextLong() & ~0xF000L) | 0x4000L;
        long lsb = (random.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
        return new UUID(msb, lsb).toString();
    }

    private ManagedChannel channelFor(int thread, int threads) {
        return channels[thread % Math.min(threads, channels.length)];
    }

    private static AuditServiceGrpc.AuditServiceBlockingStub stub(ManagedChannel channel, long deadlineSeconds) {
        return AuditServiceGrpc.newBlockingStub(channel).withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        for (ManagedChannel c : channels) {
            c.shutdownNow();
        }
        for (ManagedChannel c : channels) {
            try {
                c.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}

package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.DecryptResponse;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Encrypt load with a fixed number of calls in flight, from asynchronous stubs instead of one
 * blocking thread per call: the way to drive the key service at 64–512 concurrent calls on a
 * two-core machine without the client's own threads eating the CPU. Each of {@code inFlight} slots
 * starts its next call as soon as the previous one answered (closed loop, like {@link LoadRunner},
 * but without a thread per slot); slot {@code i} uses channel {@code i % channels}. Throughput counts
 * the calls started inside the timed window, latency is per call (HdrHistogram, 3 digits).
 *
 * <p>The channels run their callbacks on the Netty event loop (direct executor): a callback only
 * records the latency and starts the next call, it never blocks.
 */
final class InFlightRunner implements AutoCloseable {

    private static final long HIGHEST_TRACKABLE_NANOS = TimeUnit.SECONDS.toNanos(60);
    private static final long DEADLINE_SECONDS = 30;
    private static final long MAX_ERRORS = 1000;

    private static final int WARMUP = 0;
    private static final int MEASURE = 1;
    private static final int STOP = 2;

    private final ManagedChannel[] channels;
    private final EncryptRequest request;
    private final byte[] plaintext;
    private final byte[] aad;

    InFlightRunner(String target, int channelCount) {
        channels = new ManagedChannel[channelCount];
        for (int i = 0; i < channelCount; i++) {
            channels[i] = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
                    .userAgent("tpmkms-bench")
                    .directExecutor()
                    .build();
        }
        SecureRandom random = new SecureRandom();
        plaintext = new byte[GrpcWorkloads.PAYLOAD_BYTES];
        aad = new byte[GrpcWorkloads.AAD_BYTES];
        random.nextBytes(plaintext);
        random.nextBytes(aad);
        request = EncryptRequest.newBuilder()
                .setKey(GrpcWorkloads.AES_KEY)
                .setPlaintext(ByteString.copyFrom(plaintext))
                .setAdditionalAuthenticatedData(ByteString.copyFrom(aad))
                .build();
    }

    static String description() {
        return "gRPC Encrypt AES-256-GCM, 1 KiB + 16 B AAD, async, N calls in flight";
    }

    /**
     * {@code inFlight} concurrent Encrypts for {@code warmup}, then for {@code window}; every
     * successful call (warm-up included) increments {@code acknowledged}. After the window the last
     * ciphertext is decrypted through the service; a wrong plaintext counts as an error.
     */
    Measurement run(int inFlight, Duration warmup, Duration window, LongAdder acknowledged) throws Exception {
        State s = new State(inFlight);
        for (int i = 0; i < inFlight; i++) {
            start(s, channels[i % channels.length]);
        }
        TimeUnit.NANOSECONDS.sleep(warmup.toNanos());
        s.phase = MEASURE;
        long t0 = System.nanoTime();
        TimeUnit.NANOSECONDS.sleep(window.toNanos());
        s.phase = STOP;
        long t1 = System.nanoTime();
        if (!s.finished.await(90, TimeUnit.SECONDS)) {
            throw new IllegalStateException("calls still in flight 90 s after the window");
        }
        acknowledged.add(s.acknowledged.sum());
        long errors = s.errors.sum();
        String firstError = s.firstError.get();
        EncryptResponse last = s.last.get();
        if (last != null) {
            try {
                DecryptResponse d = KeyServiceGrpc.newBlockingStub(channels[0])
                        .withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
                        .decrypt(DecryptRequest.newBuilder().setKey(GrpcWorkloads.AES_KEY)
                                .setCiphertext(last.getCiphertext())
                                .setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build());
                if (!Arrays.equals(d.getPlaintext().toByteArray(), plaintext)) {
                    errors++;
                    if (firstError == null) {
                        firstError = "sample check: Decrypt did not give the plaintext back";
                    }
                }
            } catch (Exception e) {
                errors++;
                if (firstError == null) {
                    firstError = "sample check: " + LoadRunner.describe(e);
                }
            }
        }
        Histogram h = s.latency.getIntervalHistogram();
        return new Measurement("grpc-encrypt-inflight", description(), inFlight, s.operations.sum(),
                (t1 - t0) / 1e9,
                h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(50) / 1e3,
                h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(99) / 1e3,
                errors, firstError);
    }

    private void start(State s, ManagedChannel channel) {
        int phase = s.phase;
        if (phase == STOP) {
            s.finished.countDown();
            return;
        }
        long t0 = System.nanoTime();
        KeyServiceGrpc.newStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
                .encrypt(request, new StreamObserver<>() {
                    private EncryptResponse response;

                    @Override
                    public void onNext(EncryptResponse r) {
                        response = r;
                    }

                    @Override
                    public void onError(Throwable e) {
                        s.errors.increment();
                        s.firstError.compareAndSet(null, LoadRunner.describe(e));
                        if (s.errors.sum() > MAX_ERRORS) {
                            s.finished.countDown(); // the run fails anyway; do not spin on a dead channel
                        } else {
                            start(s, channel);
                        }
                    }

                    @Override
                    public void onCompleted() {
                        long elapsed = System.nanoTime() - t0;
                        EncryptResponse r = response;
                        if (r == null || r.getCiphertext().size() != GrpcWorkloads.CIPHERTEXT_BYTES || r.getVersion() != 1) {
                            s.errors.increment();
                            s.firstError.compareAndSet(null, "unexpected Encrypt answer: "
                                    + (r == null ? "none" : r.getCiphertext().size() + " bytes, version " + r.getVersion()));
                        } else {
                            s.acknowledged.increment();
                            s.last.set(r);
                            if (phase == MEASURE) {
                                s.latency.recordValue(Math.min(elapsed, HIGHEST_TRACKABLE_NANOS));
                                s.operations.increment();
                            }
                        }
                        start(s, channel);
                    }
                });
    }

    private static final class State {
        volatile int phase = WARMUP;
        final CountDownLatch finished;
        final Recorder latency = new Recorder(HIGHEST_TRACKABLE_NANOS, 3);
        final LongAdder operations = new LongAdder();
        final LongAdder acknowledged = new LongAdder();
        final LongAdder errors = new LongAdder();
        final AtomicReference<String> firstError = new AtomicReference<>();
        final AtomicReference<EncryptResponse> last = new AtomicReference<>();

        State(int inFlight) {
            finished = new CountDownLatch(inFlight);
        }
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

package io.tpmkms.cli;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.BindableService;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the CLI tests' fake services share: each records every request and answers with the
 * responses queued for its type (the default instance when none is queued), or with the error set
 * by {@link #fail}, after the delay set by {@link #delay}. A fake implements its service's
 * {@code AsyncService} and calls {@link #answer} from every method. Thread-safe enough for one CLI
 * call at a time.
 */
public abstract class FakeService<S extends FakeService<S>> implements BindableService {

    private final List<Message> requests = new ArrayList<>();
    private final Map<Class<?>, Deque<Message>> responses = new HashMap<>();
    private com.google.rpc.Status error;
    private long delayMillis;

    public synchronized void reset() {
        requests.clear();
        responses.clear();
        error = null;
        delayMillis = 0;
    }

    /** Queues responses; each is answered once, in order, to the RPC returning its type. */
    @SuppressWarnings("unchecked")
    public synchronized S respond(Message... answers) {
        for (Message m : answers) {
            responses.computeIfAbsent(m.getClass(), c -> new ArrayDeque<>()).add(m);
        }
        return (S) this;
    }

    /** Every following call fails with this status and an ErrorInfo carrying {@code reason}. */
    public synchronized void fail(Status.Code code, String message, String reason) {
        error = com.google.rpc.Status.newBuilder()
                .setCode(code.value())
                .setMessage(message)
                .addDetails(Any.pack(ErrorInfo.newBuilder()
                        .setReason(reason).setDomain("tpmkms.io").putAllMetadata(errorMetadata()).build()))
                .build();
    }

    /** The metadata of the ErrorInfo that {@link #fail} sets. */
    protected Map<String, String> errorMetadata() {
        return Map.of();
    }

    public synchronized void delay(long millis) {
        delayMillis = millis;
    }

    public synchronized List<Message> requests() {
        return List.copyOf(requests);
    }

    public synchronized <T extends Message> List<T> requests(Class<T> type) {
        return requests.stream().filter(type::isInstance).map(type::cast).toList();
    }

    /** The one request of that type; fails if there was none or more than one. */
    public <T extends Message> T only(Class<T> type) {
        List<T> found = requests(type);
        if (found.size() != 1) {
            throw new AssertionError("expected one " + type.getSimpleName() + ", got " + requests());
        }
        return found.get(0);
    }

    /** Records the request; the error every call answers with now, or null. */
    protected synchronized com.google.rpc.Status record(Message request) {
        requests.add(request);
        return error;
    }

    /** Records the request and answers it (see the class comment). */
    @SuppressWarnings("unchecked")
    protected <Q extends Message, R extends Message> void answer(Q request, StreamObserver<R> observer, R empty) {
        com.google.rpc.Status failure;
        Message response;
        long sleep;
        synchronized (this) {
            failure = record(request);
            Deque<Message> queued = responses.get(empty.getClass());
            response = queued == null || queued.isEmpty() ? empty : queued.poll();
            sleep = delayMillis;
        }
        if (sleep > 0) {
            try {
                Thread.sleep(sleep);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (failure != null) {
            observer.onError(StatusProto.toStatusRuntimeException(failure));
            return;
        }
        observer.onNext((R) response);
        observer.onCompleted();
    }
}

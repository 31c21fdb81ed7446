package io.tpmkms.cli.connection;

import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.AbstractStub;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * One channel to a tpmkms service (the key service or the audit service, see {@link Service}) for
 * the life of one command.
 *
 * <p>Security is decided here and nowhere else: {@link #channelCredentials()} (plaintext today,
 * TLS later) and {@link Settings#callCredentials()} (none today; the OIDC token of
 * {@code tpmkms login} later). Every stub handed out carries a fresh deadline, so a command that
 * pages through results gets the full timeout per call.
 *
 * <p>Not thread-safe; a command uses it from one thread. The channel connects lazily, so an
 * unreachable server shows up as UNAVAILABLE on the first call.
 */
public final class KmsConnection implements AutoCloseable {

    /** The services the CLI talks to, each at its own address. */
    public enum Service {
        KEY("key service"),
        AUDIT("audit service");

        private final String description;

        Service(String description) {
            this.description = description;
        }

        /** For messages: "key service", "audit service". */
        public String description() {
            return description;
        }
    }

    /**
     * @param service         which service is at {@code address}
     * @param address         gRPC target, usually {@code host:port}
     * @param timeout         deadline of each call (of a whole stream, for streaming calls)
     * @param callCredentials attached to every call; {@code null} for none
     */
    public record Settings(Service service, String address, Duration timeout, CallCredentials callCredentials) {
    }

    private final Settings settings;
    private final ManagedChannel channel;

    private KmsConnection(Settings settings, ManagedChannel channel) {
        this.settings = settings;
        this.channel = channel;
    }

    public static KmsConnection open(Settings settings) {
        ManagedChannel channel = Grpc.newChannelBuilder(settings.address(), channelCredentials())
                .userAgent("tpmkms-cli")
                .build();
        return new KmsConnection(settings, channel);
    }

    private static ChannelCredentials channelCredentials() {
        return InsecureChannelCredentials.create();
    }

    public Service service() {
        return settings.service();
    }

    public String address() {
        return settings.address();
    }

    public Duration timeout() {
        return settings.timeout();
    }

    /** A key service stub whose deadline starts now. */
    public KeyServiceGrpc.KeyServiceBlockingStub keys() {
        return prepare(Service.KEY, KeyServiceGrpc.newBlockingStub(channel));
    }

    /**
     * An audit service stub whose deadline starts now. For ExportRecords the deadline covers the
     * whole stream.
     */
    public AuditServiceGrpc.AuditServiceBlockingStub audit() {
        return prepare(Service.AUDIT, AuditServiceGrpc.newBlockingStub(channel));
    }

    private <S extends AbstractStub<S>> S prepare(Service wanted, S stub) {
        if (settings.service() != wanted) {
            throw new IllegalStateException("this connection is to the " + settings.service().description()
                    + " at " + settings.address() + ", not to the " + wanted.description());
        }
        S withDeadline = stub.withDeadlineAfter(settings.timeout().toMillis(), TimeUnit.MILLISECONDS);
        return settings.callCredentials() == null ? withDeadline : withDeadline.withCallCredentials(settings.callCredentials());
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

package io.tpmkms.cli.connection;

import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * One channel to the key service for the life of one command.
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

    /**
     * @param address         gRPC target, usually {@code host:port}
     * @param timeout         deadline of each call
     * @param callCredentials attached to every call; {@code null} for none
     */
    public record Settings(String address, Duration timeout, CallCredentials callCredentials) {
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

    public String address() {
        return settings.address();
    }

    public Duration timeout() {
        return settings.timeout();
    }

    /** A stub whose deadline starts now. */
    public KeyServiceGrpc.KeyServiceBlockingStub keys() {
        KeyServiceGrpc.KeyServiceBlockingStub stub = KeyServiceGrpc.newBlockingStub(channel)
                .withDeadlineAfter(settings.timeout().toMillis(), TimeUnit.MILLISECONDS);
        return settings.callCredentials() == null ? stub : stub.withCallCredentials(settings.callCredentials());
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

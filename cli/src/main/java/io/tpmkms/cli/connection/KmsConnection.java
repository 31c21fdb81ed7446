package io.tpmkms.cli.connection;

import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.okhttp.OkHttpChannelBuilder;
import io.grpc.stub.AbstractStub;
import io.tpmkms.cli.auth.AuthenticationException;
import io.tpmkms.cli.auth.TokenSource;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.tls.ClientTls;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * One channel to a tpmkms service (the key service, the audit service or the policy service, see
 * {@link Service}) for the life of one command.
 *
 * <p>Security is decided here and nowhere else: the channel credentials ({@link Settings#tls()}:
 * TLS verifying the server's chain against the CA bundle and its host name against the address,
 * with a client certificate where one is given; or plaintext) and the call credentials, {@link BearerToken}: every call of every stub handed out
 * carries {@code authorization: Bearer <token>} from the {@link TokenSource} (TPMKMS_TOKEN or the
 * cache of {@code tpmkms login}). Every stub also carries a fresh deadline, so a command that
 * pages through results gets the full timeout per call.
 *
 * <p>Over a plaintext channel tokens travel in clear: the services allow plaintext on loopback only
 * (docs/operations.md, TLS).
 *
 * <p>Not thread-safe; a command uses it from one thread. The channel starts connecting when it is
 * opened, in the background; an unreachable server shows up as UNAVAILABLE on the first call.
 */
public final class KmsConnection implements AutoCloseable {

    /** The services the CLI talks to, each at its own address. */
    public enum Service {
        KEY("key service"),
        AUDIT("audit service"),
        POLICY("policy service");

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
     * @param tokens          the bearer token of every call; {@code null} sends none (tests of the
     *                        server's answer to a call without a token)
     * @param tls             transport security of the channel
     */
    public record Settings(Service service, String address, Duration timeout, TokenSource tokens, ClientTls tls) {
        public Settings(Service service, String address, Duration timeout, TokenSource tokens) {
            this(service, address, timeout, tokens, ClientTls.plaintext());
        }
    }

    /** The metadata key of the bearer token (RFC 6750 §2.1). */
    public static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    private final Settings settings;
    private final ManagedChannel channel;
    private final CallCredentials callCredentials;

    private KmsConnection(Settings settings, ManagedChannel channel) {
        this.settings = settings;
        this.channel = channel;
        this.callCredentials = settings.tokens() == null ? null : new BearerToken(settings.tokens());
    }

    public static KmsConnection open(Settings settings) {
        // OkHttp explicitly: the tests also have Netty on the class path, and a provider chosen by
        // the service loader would make them test another transport than the one that ships.
        OkHttpChannelBuilder builder = OkHttpChannelBuilder.forTarget(settings.address()).userAgent("tpmkms-cli");
        if (settings.tls().tls()) {
            // not TlsChannelCredentials: with them OkHttp offers TLS 1.2 only, and the services want 1.3
            builder.sslSocketFactory(settings.tls().sslContext().getSocketFactory())
                    .tlsConnectionSpec(TLS_VERSIONS, CIPHER_SUITES);
        } else {
            builder.usePlaintext();
        }
        ManagedChannel channel = builder.build();
        // Connect now, on gRPC's threads: the TCP (and TLS) handshake runs while this thread builds the
        // request, whose protobuf descriptors take about as long (ADR 0018). A server that cannot be
        // reached still shows as UNAVAILABLE on the first call, as with a lazy channel.
        channel.getState(true);
        return new KmsConnection(settings, channel);
    }

    private static final String[] TLS_VERSIONS = {"TLSv1.3", "TLSv1.2"};
    /** TLS 1.3's suites, then TLS 1.2's forward-secret AEAD suites (OkHttp's default list plus 1.3). */
    private static final String[] CIPHER_SUITES = {
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"};

    /** How this connection is secured. */
    public ClientTls tls() {
        return settings.tls();
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

    /** A policy service stub whose deadline starts now. */
    public PolicyServiceGrpc.PolicyServiceBlockingStub policy() {
        return prepare(Service.POLICY, PolicyServiceGrpc.newBlockingStub(channel));
    }

    /**
     * Asks the service's {@code grpc.health.v1.Health/Check} for {@code service} ("" = the server):
     * the status name (SERVING, NOT_SERVING, ...). No token is sent: the health service needs none.
     */
    public String health(String service) {
        return check(service).status();
    }

    /**
     * A health answer: the status name, what the server says it runs on ({@code tpmkms-info-*} headers) and,
     * when it is not ready, why ({@code tpmkms-not-ready}; null otherwise).
     */
    public record HealthAnswer(String status, java.util.SortedMap<String, String> info, String notReady) {
    }

    /** As {@link #health}, with the server's {@code tpmkms-info-*} response headers (name without the prefix). */
    public HealthAnswer check(String service) {
        byte[] request = HealthWire.request(service);
        var headers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
        var trailers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
        io.grpc.Channel capturing = io.grpc.ClientInterceptors.intercept(channel,
                io.grpc.stub.MetadataUtils.newCaptureMetadataInterceptor(headers, trailers));
        byte[] response = io.grpc.stub.ClientCalls.blockingUnaryCall(capturing, HealthWire.CHECK,
                io.grpc.CallOptions.DEFAULT.withDeadlineAfter(settings.timeout().toMillis(), TimeUnit.MILLISECONDS),
                request);
        java.util.SortedMap<String, String> info = new java.util.TreeMap<>();
        io.grpc.Metadata h = headers.get();
        if (h != null) {
            for (String key : h.keys()) {
                if (key.startsWith(INFO_PREFIX) && !key.endsWith(io.grpc.Metadata.BINARY_HEADER_SUFFIX)) {
                    String value = h.get(io.grpc.Metadata.Key.of(key, io.grpc.Metadata.ASCII_STRING_MARSHALLER));
                    if (value != null) info.put(key.substring(INFO_PREFIX.length()), value);
                }
            }
        }
        String notReady = h == null ? null
                : h.get(io.grpc.Metadata.Key.of("tpmkms-not-ready", io.grpc.Metadata.ASCII_STRING_MARSHALLER));
        return new HealthAnswer(HealthWire.status(response), info, notReady);
    }

    /** The prefix of the facts a tpmkms service tells with its health answers (platform's ServerInfo). */
    static final String INFO_PREFIX = "tpmkms-info-";

    private <S extends AbstractStub<S>> S prepare(Service wanted, S stub) {
        if (settings.service() != wanted) {
            throw new IllegalStateException("this connection is to the " + settings.service().description()
                    + " at " + settings.address() + ", not to the " + wanted.description());
        }
        S withDeadline = stub.withDeadlineAfter(settings.timeout().toMillis(), TimeUnit.MILLISECONDS);
        return callCredentials == null ? withDeadline : withDeadline.withCallCredentials(callCredentials);
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            // briefly: a connection still being made (the channel connects when opened, to an address
            // that may never answer) must not hold up a command that ends before its first call
            channel.awaitTermination(200, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * {@code authorization: Bearer <token>} on each call. The token is fetched on gRPC's
     * application executor, not the transport thread, because getting it may read the cache and
     * renew the token over HTTP. Without a usable token the call fails locally with
     * UNAUTHENTICATED whose cause is the {@link AuthenticationException}, and nothing is sent.
     */
    static final class BearerToken extends CallCredentials {
        private final TokenSource tokens;

        BearerToken(TokenSource tokens) {
            this.tokens = tokens;
        }

        @Override
        public void applyRequestMetadata(RequestInfo info, Executor appExecutor, MetadataApplier applier) {
            appExecutor.execute(() -> {
                try {
                    Metadata headers = new Metadata();
                    headers.put(AUTHORIZATION, "Bearer " + tokens.token().value());
                    applier.apply(headers);
                } catch (AuthenticationException e) {
                    applier.fail(Status.UNAUTHENTICATED.withDescription(e.getMessage()).withCause(e));
                } catch (RuntimeException e) {
                    applier.fail(Status.UNAUTHENTICATED.withDescription("cannot get a token: " + e).withCause(e));
                }
            });
        }
    }
}

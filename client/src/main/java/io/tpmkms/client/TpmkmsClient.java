package io.tpmkms.client;

import com.google.protobuf.ByteString;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.tpmkms.proto.key.v1.BatchDecryptRequest;
import io.tpmkms.proto.key.v1.BatchEncryptRequest;
import io.tpmkms.proto.key.v1.BatchMacSignRequest;
import io.tpmkms.proto.key.v1.BatchSignRequest;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.DecryptResponse;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.GenerateDataKeyRequest;
import io.tpmkms.proto.key.v1.GenerateDataKeyResponse;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.MacSignRequest;
import io.tpmkms.proto.key.v1.MacSignResponse;
import io.tpmkms.proto.key.v1.SignRequest;
import io.tpmkms.proto.key.v1.SignResponse;
import io.tpmkms.proto.key.v1.VerifyRequest;
import io.tpmkms.tls.CertificateReloader;
import io.tpmkms.tls.ClientTls;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A client of the tpmkms key service for Java programs (docs/clients.md). Thread-safe; make one
 * per process and share it.
 *
 * <pre>{@code
 * try (TpmkmsClient kms = TpmkmsClient.builder()
 *     .target("kms.example.internal:9090")
 *     .tls(ClientTls.verifiedBy(Path.of("/etc/tpmkms/ca.crt")))
 *     .credentials(TokenSource.clientCredentials(URI.create("https://sso.example/realms/tpmkms"),
 *         "payments", secret))
 *     .build()) {
 *   byte[] ct = kms.encrypt("payments/cards", plaintext, aad);
 * }
 * }</pre>
 *
 * <p>Every call carries a bearer token from the {@link TokenSource} (fetched and refreshed there),
 * has a deadline, and fails with a {@link TpmkmsException} carrying the service's stable reason. A
 * call that is safe to repeat (reads, Encrypt, Decrypt, Sign, Verify, MAC, GenerateDataKey) is sent
 * again after UNAVAILABLE or ABORTED as the {@link RetryPolicy} says; a change (CreateKey,
 * RotateKey, ...) is never repeated by the library, because its first attempt may have been carried
 * out. After UNAUTHENTICATED the token is fetched again and the call sent once more.
 */
public final class TpmkmsClient implements AutoCloseable {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final CertificateReloader reloader;
  private final TokenSource tokens;
  private final Duration deadline;
  private final RetryPolicy retries;
  private final Sleeper sleeper;

  /** How the client waits between attempts (a test can count instead of sleeping). */
  interface Sleeper {
    void sleep(Duration d) throws InterruptedException;
  }

  private TpmkmsClient(Builder b) {
    this.tokens = b.tokens;
    this.deadline = b.deadline;
    this.retries = b.retries;
    this.sleeper = b.sleeper;
    if (b.channel != null) {
      this.channel = b.channel;
      this.ownsChannel = false;
      this.reloader = null;
    } else {
      this.reloader = b.tls.tls() ? new CertificateReloader(Duration.ofMinutes(1)) : null;
      ChannelCredentials creds = b.tls.tls() ? b.tls.credentials(reloader) : InsecureChannelCredentials.create();
      this.channel = Grpc.newChannelBuilder(b.target, creds).userAgent("tpmkms-client-java").build();
      this.ownsChannel = true;
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  public static final class Builder {
    private String target;
    private ClientTls tls = ClientTls.plaintext();
    private TokenSource tokens = TokenSource.none();
    private Duration deadline = Duration.ofSeconds(30);
    private RetryPolicy retries = RetryPolicy.DEFAULT;
    private ManagedChannel channel;
    private Sleeper sleeper = d -> Thread.sleep(d.toMillis(), (int) (d.toNanos() % 1_000_000));

    /** host:port of the key service (or any gRPC target name). */
    public Builder target(String target) {
      this.target = Objects.requireNonNull(target);
      return this;
    }

    /** TLS, and mutual TLS with a client certificate ({@link ClientTls}); default plaintext (loopback only). */
    public Builder tls(ClientTls tls) {
      this.tls = Objects.requireNonNull(tls);
      return this;
    }

    public Builder credentials(TokenSource tokens) {
      this.tokens = Objects.requireNonNull(tokens);
      return this;
    }

    /** Each attempt's deadline (default 30 s: an RSA key on a TPM takes seconds). */
    public Builder deadline(Duration deadline) {
      this.deadline = Objects.requireNonNull(deadline);
      return this;
    }

    public Builder retries(RetryPolicy retries) {
      this.retries = Objects.requireNonNull(retries);
      return this;
    }

    /** A channel of the caller's own (not closed by the client); replaces target and TLS. */
    public Builder channel(ManagedChannel channel) {
      this.channel = Objects.requireNonNull(channel);
      return this;
    }

    Builder sleeper(Sleeper sleeper) {
      this.sleeper = sleeper;
      return this;
    }

    public TpmkmsClient build() {
      if (channel == null && target == null) throw new IllegalStateException("target (host:port) is required");
      return new TpmkmsClient(this);
    }
  }

  // ---- typed calls (all safe to repeat) ----------------------------------------------------------

  /** Encrypt under the key's primary version; the ciphertext names its version. */
  public byte[] encrypt(String key, byte[] plaintext, byte[] aad) {
    return encryptResponse(key, plaintext, aad).getCiphertext().toByteArray();
  }

  public EncryptResponse encryptResponse(String key, byte[] plaintext, byte[] aad) {
    EncryptRequest r = EncryptRequest.newBuilder().setKey(key).setPlaintext(ByteString.copyFrom(plaintext))
        .setAdditionalAuthenticatedData(bytes(aad)).build();
    return call(true, s -> s.encrypt(r));
  }

  public byte[] decrypt(String key, byte[] ciphertext, byte[] aad) {
    return decryptResponse(key, ciphertext, aad).getPlaintext().toByteArray();
  }

  public DecryptResponse decryptResponse(String key, byte[] ciphertext, byte[] aad) {
    DecryptRequest r = DecryptRequest.newBuilder().setKey(key).setCiphertext(ByteString.copyFrom(ciphertext))
        .setAdditionalAuthenticatedData(bytes(aad)).build();
    return call(true, s -> s.decrypt(r));
  }

  /** A fresh data key: in clear (use it, then forget it) and wrapped under the key (store it). */
  public GenerateDataKeyResponse generateDataKey(String key, int lengthBytes, byte[] aad) {
    GenerateDataKeyRequest r = GenerateDataKeyRequest.newBuilder().setKey(key).setLengthBytes(lengthBytes)
        .setAdditionalAuthenticatedData(bytes(aad)).build();
    return call(true, s -> s.generateDataKey(r));
  }

  public SignResponse sign(SignRequest request) {
    return call(true, s -> s.sign(request));
  }

  public boolean verify(VerifyRequest request) {
    return call(true, s -> s.verify(request)).getValid();
  }

  public byte[] macSign(String key, byte[] data) {
    MacSignRequest r = MacSignRequest.newBuilder().setKey(key).setData(ByteString.copyFrom(data)).build();
    return call(true, s -> s.macSign(r)).getMac().toByteArray();
  }

  public String publicKeyPem(String key, int version) {
    GetPublicKeyRequest r = GetPublicKeyRequest.newBuilder().setKey(key).setVersion(version).build();
    return call(true, s -> s.getPublicKey(r)).getPem();
  }

  // ---- batches (docs/clients.md, "Batches") -------------------------------------------------------

  /** The most items the service takes in one batch call. */
  public static final int MAX_BATCH_ITEMS = 1000;
  /** The most request bytes this client puts in one batch call (the service takes 1 MiB). */
  static final int MAX_BATCH_BYTES = 1_000_000;

  /**
   * One item's outcome: its response, or the error the single call would have given (code and
   * stable reason). A batch call succeeds as a whole while some of its items fail.
   */
  public record BatchResult<T>(T response, TpmkmsException error) {
    public boolean ok() {
      return error == null;
    }

    /** The response, or the item's error thrown. */
    public T orThrow() {
      if (error != null) throw error;
      return response;
    }
  }

  /**
   * Encrypts every item (each naming its own key), answered in the items' order. Any number of
   * items: sent in calls of at most {@value #MAX_BATCH_ITEMS} items and about 1 MB, each call retried
   * like a single Encrypt. One audit record per item on the service side.
   */
  public List<BatchResult<EncryptResponse>> encryptBatch(List<EncryptRequest> items) {
    return inBatches(items, chunk -> call(true, s -> s.batchEncrypt(BatchEncryptRequest.newBuilder()
        .addAllItems(chunk).build())).getResultsList().stream()
        .map(r -> result(r.hasResponse(), r.getResponse(), r.getError())).toList());
  }

  public List<BatchResult<DecryptResponse>> decryptBatch(List<DecryptRequest> items) {
    return inBatches(items, chunk -> call(true, s -> s.batchDecrypt(BatchDecryptRequest.newBuilder()
        .addAllItems(chunk).build())).getResultsList().stream()
        .map(r -> result(r.hasResponse(), r.getResponse(), r.getError())).toList());
  }

  public List<BatchResult<SignResponse>> signBatch(List<SignRequest> items) {
    return inBatches(items, chunk -> call(true, s -> s.batchSign(BatchSignRequest.newBuilder()
        .addAllItems(chunk).build())).getResultsList().stream()
        .map(r -> result(r.hasResponse(), r.getResponse(), r.getError())).toList());
  }

  public List<BatchResult<MacSignResponse>> macSignBatch(List<MacSignRequest> items) {
    return inBatches(items, chunk -> call(true, s -> s.batchMacSign(BatchMacSignRequest.newBuilder()
        .addAllItems(chunk).build())).getResultsList().stream()
        .map(r -> result(r.hasResponse(), r.getResponse(), r.getError())).toList());
  }

  private static <T> BatchResult<T> result(boolean ok, T response, com.google.rpc.Status error) {
    return ok ? new BatchResult<>(response, null) : new BatchResult<>(null, TpmkmsException.of(error));
  }

  /** Sends the items in calls of at most MAX_BATCH_ITEMS items and MAX_BATCH_BYTES bytes, in order. */
  static <I extends com.google.protobuf.Message, O> List<BatchResult<O>> inBatches(List<I> items,
      Function<List<I>, List<BatchResult<O>>> send) {
    List<BatchResult<O>> out = new java.util.ArrayList<>(items.size());
    List<I> chunk = new java.util.ArrayList<>();
    long bytes = 0;
    for (I item : items) {
      int size = item.getSerializedSize() + 8; // the field's tag and length
      if (!chunk.isEmpty() && (chunk.size() == MAX_BATCH_ITEMS || bytes + size > MAX_BATCH_BYTES)) {
        out.addAll(checked(chunk, send.apply(List.copyOf(chunk))));
        chunk.clear();
        bytes = 0;
      }
      chunk.add(item);
      bytes += size;
    }
    if (!chunk.isEmpty()) out.addAll(checked(chunk, send.apply(List.copyOf(chunk))));
    return out;
  }

  private static <O> List<BatchResult<O>> checked(List<?> chunk, List<BatchResult<O>> results) {
    if (results.size() != chunk.size()) {
      throw new TpmkmsException(Status.Code.INTERNAL, "", java.util.Map.of(), "the service answered "
          + results.size() + " results for " + chunk.size() + " items", 1, null);
    }
    return results;
  }

  // ---- any call -----------------------------------------------------------------------------------

  /**
   * Any key-service call through the client's token, deadline, error mapping and — when {@code
   * safeToRepeat} — retries: {@code kms.call(false, s -> s.rotateKey(request))}.
   */
  public <T> T call(boolean safeToRepeat, Function<KeyServiceGrpc.KeyServiceBlockingStub, T> call) {
    int attempt = 0;
    boolean reauthenticated = false;
    while (true) {
      attempt++;
      try {
        return call.apply(KeyServiceGrpc.newBlockingStub(channel).withCallCredentials(bearer())
            .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS));
      } catch (StatusRuntimeException e) {
        Status.Code code = e.getStatus().getCode();
        if (code == Status.Code.UNAUTHENTICATED && !reauthenticated) {
          // an expired or revoked token: a new one, once (a request refused for what it is stays refused)
          tokens.invalidate();
          reauthenticated = true;
          attempt--;
          continue;
        }
        if (!safeToRepeat || !RetryPolicy.retryable(code) || attempt >= retries.maxAttempts()) {
          throw TpmkmsException.of(e, attempt);
        }
        try {
          sleeper.sleep(retries.backoff(attempt));
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw TpmkmsException.of(e, attempt);
        }
      }
    }
  }

  private CallCredentials bearer() {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
        String token;
        try {
          token = tokens.token();
        } catch (TpmkmsException e) {
          applier.fail(Status.UNAUTHENTICATED.withDescription(e.getMessage()));
          return;
        } catch (RuntimeException e) {
          applier.fail(Status.UNAUTHENTICATED.withDescription("no token: " + e.getClass().getSimpleName()));
          return;
        }
        Metadata m = new Metadata();
        if (token != null) m.put(AUTHORIZATION, "Bearer " + token);
        applier.apply(m);
      }
    };
  }

  private static ByteString bytes(byte[] b) {
    return b == null ? ByteString.EMPTY : ByteString.copyFrom(b);
  }

  @Override
  public void close() {
    if (ownsChannel) {
      channel.shutdown();
      try {
        if (!channel.awaitTermination(5, TimeUnit.SECONDS)) channel.shutdownNow();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        channel.shutdownNow();
      }
    }
    if (reloader != null) reloader.close();
  }
}

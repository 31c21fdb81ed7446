package io.tpmkms.kmsplugin;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.client.TpmkmsClient;
import io.tpmkms.client.TpmkmsException;
import io.tpmkms.kmsplugin.v2.DecryptRequest;
import io.tpmkms.kmsplugin.v2.DecryptResponse;
import io.tpmkms.kmsplugin.v2.EncryptRequest;
import io.tpmkms.kmsplugin.v2.EncryptResponse;
import io.tpmkms.kmsplugin.v2.KeyManagementServiceGrpc;
import io.tpmkms.kmsplugin.v2.StatusRequest;
import io.tpmkms.kmsplugin.v2.StatusResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The Kubernetes KMS v2 {@code KeyManagementService} backed by one tpmkms key (docs/clients.md,
 * "Kubernetes KMS v2 plugin").
 *
 * <ul>
 *   <li><b>Encrypt</b> encrypts the API server's data key (or seed) under the key's primary version
 *       and answers {@code key_id} {@link KeyId tpmkms:NAMESPACE/NAME:vVERSION} with the annotations
 *       {@value #KEY_ANNOTATION} (the key) and {@value #VERSION_ANNOTATION} (the version, decimal).
 *   <li><b>Decrypt</b> decrypts only for the configured key: a key_id or annotations naming another
 *       key are refused with FAILED_PRECONDITION, malformed or contradictory ones (key_id, annotations
 *       and the version in the ciphertext's header, ADR 0001) with INVALID_ARGUMENT, before tpmkms is
 *       asked. The ciphertext names its version, so data keys from before a rotation still decrypt.
 *   <li><b>Status</b> encrypts a random 32-byte probe and decrypts it again on every call, within the
 *       status timeout and without retries: {@code healthz} is "ok" only if the bytes came back, else
 *       the failure's code and tpmkms reason; {@code key_id} is the probe's, so it changes as soon as
 *       the key rotates (the last known one while unhealthy).
 * </ul>
 *
 * <p>Failures reach the API server as the tpmkms status code with a message naming the operation,
 * the key, the code and the stable reason, and the reason again as {@code google.rpc.ErrorInfo}
 * (domain tpmkms.io); an unexpected failure as INTERNAL without its stack trace (logged here).
 * Plaintexts, tokens and secrets are never logged. Thread-safe: calls run concurrently on the gRPC
 * server's threads and block on tpmkms; the API server's deadline and cancellation of a call reach
 * the tpmkms call it makes.
 */
public final class TpmkmsKeyManagementService extends KeyManagementServiceGrpc.KeyManagementServiceImplBase {
  /** Annotation: the tpmkms key that encrypted, {@code NAMESPACE/NAME} in UTF-8. */
  public static final String KEY_ANNOTATION = "key.tpmkms.io";
  /** Annotation: the key version that encrypted, in decimal ASCII. */
  public static final String VERSION_ANNOTATION = "key-version.tpmkms.io";
  /** The longest plaintext Encrypt takes: the API server sends 32 bytes; the ciphertext must fit 1 KiB. */
  public static final int MAX_PLAINTEXT = 512;
  /** The longest ciphertext the API server stores. */
  public static final int MAX_CIPHERTEXT = 1024;
  /** The contract version Status answers. */
  public static final String VERSION = "v2";

  private static final System.Logger LOG = System.getLogger(TpmkmsKeyManagementService.class.getName());
  private static final SecureRandom RANDOM = new SecureRandom();

  private final TpmkmsClient kms;
  private final TpmkmsClient probes;
  private final Runnable resetConnectBackoff;
  private final String key;
  private final byte[] aad;
  private final Duration statusTimeout;
  private final ScheduledExecutorService timer;
  private final AtomicReference<KeyId> lastKnown = new AtomicReference<>();

  /**
   * @param tpmkms        the clients (Encrypt and Decrypt; Status) and the channel's backoff reset
   * @param key           the tpmkms key, {@code NAMESPACE/NAME}, of purpose ENCRYPT_DECRYPT
   * @param aad           additional authenticated data bound to every ciphertext (empty for none);
   *                      changing it later makes the stored data keys undecryptable
   * @param statusTimeout Status's probe (encrypt and decrypt) in all
   * @param timer         runs the status timeout (shared, not closed here)
   */
  public TpmkmsKeyManagementService(TpmkmsConnection tpmkms, String key, byte[] aad, Duration statusTimeout,
      ScheduledExecutorService timer) {
    this.kms = tpmkms.calls();
    this.probes = tpmkms.probes();
    this.resetConnectBackoff = tpmkms.resetConnectBackoff();
    this.key = KeyId.requireKeyName(key);
    this.aad = aad.clone();
    this.statusTimeout = statusTimeout;
    this.timer = timer;
  }

  // ---- Status ---------------------------------------------------------------------------------

  @Override
  public void status(StatusRequest request, StreamObserver<StatusResponse> out) {
    String healthz;
    KeyId id = lastKnown.get();
    Context.CancellableContext ctx =
        Context.current().withDeadlineAfter(statusTimeout.toNanos(), TimeUnit.NANOSECONDS, timer);
    try {
      id = seen(ctx.call(this::probe));
      healthz = "ok";
    } catch (TpmkmsException e) {
      healthz = describe(e);
      LOG.log(Level.WARNING, "Status probe failed: {0}", e.getMessage());
    } catch (ProbeFailure e) {
      healthz = e.getMessage();
      LOG.log(Level.WARNING, "Status probe failed: {0}", healthz);
    } catch (Exception e) {
      healthz = "probe failed: " + e.getClass().getSimpleName();
      LOG.log(Level.ERROR, "Status probe failed", e);
    } finally {
      ctx.cancel(null);
    }
    StatusResponse.Builder r = StatusResponse.newBuilder().setVersion(VERSION).setHealthz(healthz);
    if (id != null) r.setKeyId(id.toString());
    out.onNext(r.build());
    out.onCompleted();
  }

  /**
   * Remembers the key version that encrypted last (Status answers it while unhealthy) and logs a
   * change: a rotation, or SetPrimaryVersion back to an older version. Returns {@code id}.
   */
  private KeyId seen(KeyId id) {
    KeyId before = lastKnown.getAndSet(id);
    if (!id.equals(before)) LOG.log(Level.INFO, "key_id {0}{1}", id, before == null ? "" : " (was " + before + ")");
    return id;
  }

  /** Encrypts a random probe and decrypts it; the key_id of the version that encrypted. */
  private KeyId probe() throws ProbeFailure {
    byte[] probe = new byte[32];
    RANDOM.nextBytes(probe);
    io.tpmkms.proto.key.v1.EncryptResponse encrypted = probes.call(true, reconnecting(s -> s.encrypt(
        io.tpmkms.proto.key.v1.EncryptRequest.newBuilder().setKey(key).setPlaintext(ByteString.copyFrom(probe))
            .setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build())));
    if (encrypted.getCiphertext().size() > MAX_CIPHERTEXT) {
      throw new ProbeFailure("key " + key + " makes " + encrypted.getCiphertext().size()
          + "-byte ciphertexts of 32 bytes; Kubernetes stores at most " + MAX_CIPHERTEXT);
    }
    byte[] back = probes.call(true, reconnecting(s -> s.decrypt(io.tpmkms.proto.key.v1.DecryptRequest.newBuilder()
        .setKey(key).setCiphertext(encrypted.getCiphertext()).setAdditionalAuthenticatedData(ByteString.copyFrom(aad))
        .build()))).getPlaintext().toByteArray();
    if (!MessageDigest.isEqual(probe, back)) {
      throw new ProbeFailure("key " + key + ": the probe decrypted to other bytes than were encrypted");
    }
    return new KeyId(key, encrypted.getVersion());
  }

  /** What healthz says of a tpmkms failure: the key, the code and the stable reason; not the message. */
  private String describe(TpmkmsException e) {
    return "tpmkms probe of key " + key + " failed: " + e.code()
        + (e.reason().isEmpty() ? "" : " " + e.reason());
  }

  /** A probe that tpmkms answered, with a wrong answer. */
  private static final class ProbeFailure extends Exception {
    ProbeFailure(String message) {
      super(message, null, false, false);
    }
  }

  // ---- Encrypt --------------------------------------------------------------------------------

  @Override
  public void encrypt(EncryptRequest request, StreamObserver<EncryptResponse> out) {
    byte[] plaintext = request.getPlaintext().toByteArray();
    try {
      if (plaintext.length == 0) {
        throw invalid(Status.INVALID_ARGUMENT, "the plaintext is empty");
      }
      if (plaintext.length > MAX_PLAINTEXT) {
        throw invalid(Status.INVALID_ARGUMENT, "the plaintext is " + plaintext.length + " bytes; at most "
            + MAX_PLAINTEXT + " (a data key or seed is 32; the ciphertext must fit Kubernetes' 1 KiB)");
      }
      io.tpmkms.proto.key.v1.EncryptRequest tpmkmsRequest = io.tpmkms.proto.key.v1.EncryptRequest.newBuilder()
          .setKey(key).setPlaintext(ByteString.copyFrom(plaintext))
          .setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build();
      io.tpmkms.proto.key.v1.EncryptResponse encrypted = call("Encrypt", request.getUid(),
          () -> kms.call(true, reconnecting(s -> s.encrypt(tpmkmsRequest))));
      if (encrypted.getCiphertext().size() > MAX_CIPHERTEXT) {
        LOG.log(Level.ERROR, "key {0} made a {1}-byte ciphertext; Kubernetes stores at most {2}", key,
            encrypted.getCiphertext().size(), MAX_CIPHERTEXT);
        throw invalid(Status.FAILED_PRECONDITION, "key " + key + " made a " + encrypted.getCiphertext().size()
            + "-byte ciphertext; Kubernetes stores at most " + MAX_CIPHERTEXT + " (use an ENCRYPT_DECRYPT key)");
      }
      KeyId id = new KeyId(key, encrypted.getVersion());
      seen(id);
      out.onNext(EncryptResponse.newBuilder().setCiphertext(encrypted.getCiphertext()).setKeyId(id.toString())
          .putAnnotations(KEY_ANNOTATION, ByteString.copyFromUtf8(key))
          .putAnnotations(VERSION_ANNOTATION, ByteString.copyFromUtf8(Integer.toString(id.version())))
          .build());
      out.onCompleted();
    } catch (StatusRuntimeException e) {
      out.onError(e);
    } finally {
      Arrays.fill(plaintext, (byte) 0);
    }
  }

  // ---- Decrypt --------------------------------------------------------------------------------

  @Override
  public void decrypt(DecryptRequest request, StreamObserver<DecryptResponse> out) {
    try {
      byte[] ciphertext = request.getCiphertext().toByteArray();
      if (ciphertext.length == 0) throw invalid(Status.INVALID_ARGUMENT, "the ciphertext is empty");
      KeyId id = keyIdOf(request);
      if (!id.key().equals(key)) {
        throw invalid(Status.FAILED_PRECONDITION, "the ciphertext's key_id " + id + " names key " + id.key()
            + "; this plugin serves key " + key + " only");
      }
      // ADR 0001: 0x01 | version (uint32 big-endian) | payload. A key_id swapped between two data keys
      // of the same key is caught here, not only by the authentication tag.
      if (ciphertext[0] == 1 && ciphertext.length >= 5) {
        int inCiphertext = ByteBuffer.wrap(ciphertext, 1, 4).getInt();
        if (inCiphertext != id.version()) {
          throw invalid(Status.INVALID_ARGUMENT, "the ciphertext names version " + inCiphertext
              + " of its key, its key_id " + id);
        }
      }
      io.tpmkms.proto.key.v1.DecryptRequest tpmkmsRequest = io.tpmkms.proto.key.v1.DecryptRequest.newBuilder()
          .setKey(key).setCiphertext(request.getCiphertext())
          .setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build();
      byte[] plaintext = call("Decrypt", request.getUid(),
          () -> kms.call(true, reconnecting(s -> s.decrypt(tpmkmsRequest)))).getPlaintext().toByteArray();
      out.onNext(DecryptResponse.newBuilder().setPlaintext(ByteString.copyFrom(plaintext)).build());
      Arrays.fill(plaintext, (byte) 0);
      out.onCompleted();
    } catch (StatusRuntimeException e) {
      out.onError(e);
    }
  }

  /** The key version a Decrypt request names, from its key_id and annotations, which must agree. */
  private static KeyId keyIdOf(DecryptRequest request) {
    Map<String, ByteString> a = request.getAnnotationsMap();
    String annotatedKey = a.containsKey(KEY_ANNOTATION) ? a.get(KEY_ANNOTATION).toStringUtf8() : null;
    String annotatedVersion = a.containsKey(VERSION_ANNOTATION) ? a.get(VERSION_ANNOTATION).toStringUtf8() : null;
    try {
      KeyId id;
      if (!request.getKeyId().isEmpty()) {
        id = KeyId.parse(request.getKeyId());
      } else if (annotatedKey != null && annotatedVersion != null) {
        id = KeyId.parse(KeyId.PREFIX + annotatedKey + ":v" + annotatedVersion);
      } else {
        throw invalid(Status.INVALID_ARGUMENT, "neither a key_id nor the annotations " + KEY_ANNOTATION
            + " and " + VERSION_ANNOTATION + " name the key that encrypted");
      }
      if (annotatedKey != null && !annotatedKey.equals(id.key())
          || annotatedVersion != null && !annotatedVersion.equals(Integer.toString(id.version()))) {
        throw invalid(Status.INVALID_ARGUMENT, "the annotations " + KEY_ANNOTATION + "=" + printable(annotatedKey)
            + ", " + VERSION_ANNOTATION + "=" + printable(annotatedVersion) + " contradict the key_id " + id);
      }
      return id;
    } catch (IllegalArgumentException e) {
      throw invalid(Status.INVALID_ARGUMENT, e.getMessage());
    }
  }

  private static String printable(String s) {
    if (s == null) return "(none)";
    String t = s.length() > 80 ? s.substring(0, 80) + "..." : s;
    return t.replaceAll("[^\\x20-\\x7e]", "?");
  }

  /**
   * One attempt of a tpmkms call; after UNAVAILABLE the channel's reconnect backoff is reset and the
   * call sent once more at once (it waits for the new connection): a channel that saw tpmkms down
   * otherwise refuses calls until its backoff (up to two minutes) has passed, even once tpmkms is back.
   */
  private <T> java.util.function.Function<KeyServiceGrpc.KeyServiceBlockingStub, T> reconnecting(
      java.util.function.Function<KeyServiceGrpc.KeyServiceBlockingStub, T> attempt) {
    return stub -> {
      try {
        return attempt.apply(stub);
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) throw e;
        resetConnectBackoff.run();
        return attempt.apply(stub);
      }
    };
  }

  // ---- errors ---------------------------------------------------------------------------------

  /** Runs a tpmkms call, turning its failure into what the API server is answered. */
  private <T> T call(String operation, String uid, Callable<T> call) {
    try {
      return call.call();
    } catch (TpmkmsException e) {
      LOG.log(Level.WARNING, "{0} (uid {1}) with key {2} failed: {3}", operation, uid, key, e.getMessage());
      com.google.rpc.Status.Builder s = com.google.rpc.Status.newBuilder().setCode(e.code().value())
          .setMessage("tpmkms " + operation + " with key " + key + ": " + e.getMessage());
      if (!e.reason().isEmpty()) {
        s.addDetails(Any.pack(ErrorInfo.newBuilder().setReason(e.reason()).setDomain("tpmkms.io")
            .putAllMetadata(e.metadata()).build()));
      }
      throw StatusProto.toStatusRuntimeException(s.build());
    } catch (Exception e) {
      LOG.log(Level.ERROR, operation + " (uid " + uid + ") with key " + key + " failed", e);
      throw Status.INTERNAL.withDescription("the KMS plugin failed (" + e.getClass().getSimpleName()
          + "); see its log").asRuntimeException();
    }
  }

  /** A request refused here, before tpmkms is asked (logged: the API server only shows it in its own log). */
  private static StatusRuntimeException invalid(Status status, String message) {
    LOG.log(Level.WARNING, "refused: {0} {1}", status.getCode(), message);
    return status.withDescription(message).asRuntimeException();
  }
}

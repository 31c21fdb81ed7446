package io.tpmkms.client;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.key.v1.*;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A key service for the client's unit tests, on a real socket: AES-GCM "encryption" with one
 * in-memory key, failures queued by the test, and the tokens it was sent recorded.
 */
final class FakeKeyService extends KeyServiceGrpc.KeyServiceImplBase implements AutoCloseable {
  static final io.grpc.Context.Key<String> TOKEN = io.grpc.Context.key("token");
  final List<String> tokens = new CopyOnWriteArrayList<>();
  final AtomicInteger calls = new AtomicInteger();
  final Queue<io.grpc.StatusRuntimeException> failures = new ArrayDeque<>();
  /** Tokens the service refuses (UNAUTHENTICATED). */
  final List<String> refusedTokens = new CopyOnWriteArrayList<>();
  private final SecretKeySpec aes;
  private final Server server;

  FakeKeyService() throws Exception {
    byte[] k = new byte[32];
    new SecureRandom().nextBytes(k);
    aes = new SecretKeySpec(k, "AES");
    ServerInterceptor capture = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        String auth = headers.get(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER));
        return Contexts.interceptCall(io.grpc.Context.current().withValue(TOKEN, auth), call, headers, next);
      }
    };
    server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
        .addService(ServerInterceptors.intercept(this, capture)).build().start();
  }

  ManagedChannel channel() {
    return Grpc.newChannelBuilder("127.0.0.1:" + server.getPort(), InsecureChannelCredentials.create()).build();
  }

  static io.grpc.StatusRuntimeException failure(Code code, String reason) {
    return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder().setCode(code.getNumber())
        .setMessage("refused for the test").addDetails(Any.pack(ErrorInfo.newBuilder().setReason(reason)
            .setDomain("tpmkms.io").putMetadata("key", "t/k").build())).build());
  }

  /** Counts the call; fails it if the test queued a failure or the token is refused. */
  private boolean admit(StreamObserver<?> out) {
    calls.incrementAndGet();
    String token = TOKEN.get();
    tokens.add(token == null ? "" : token);
    if (token != null && refusedTokens.contains(token)) {
      out.onError(Status.UNAUTHENTICATED.withDescription("token expired").asRuntimeException());
      return false;
    }
    io.grpc.StatusRuntimeException f;
    synchronized (failures) {
      f = failures.poll();
    }
    if (f != null) {
      out.onError(f);
      return false;
    }
    return true;
  }

  byte[] seal(byte[] plaintext, byte[] aad) throws GeneralSecurityException {
    byte[] iv = new byte[12];
    new SecureRandom().nextBytes(iv);
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.ENCRYPT_MODE, aes, new GCMParameterSpec(128, iv));
    c.updateAAD(aad);
    byte[] ct = c.doFinal(plaintext);
    byte[] out = new byte[12 + ct.length];
    System.arraycopy(iv, 0, out, 0, 12);
    System.arraycopy(ct, 0, out, 12, ct.length);
    return out;
  }

  byte[] open(byte[] sealed, byte[] aad) throws GeneralSecurityException {
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, sealed, 0, 12));
    c.updateAAD(aad);
    return c.doFinal(sealed, 12, sealed.length - 12);
  }

  @Override
  public void encrypt(EncryptRequest r, StreamObserver<EncryptResponse> out) {
    if (!admit(out)) return;
    try {
      out.onNext(EncryptResponse.newBuilder().setVersion(1).setCiphertext(ByteString.copyFrom(
          seal(r.getPlaintext().toByteArray(), r.getAdditionalAuthenticatedData().toByteArray()))).build());
      out.onCompleted();
    } catch (GeneralSecurityException e) {
      out.onError(Status.INTERNAL.asRuntimeException());
    }
  }

  @Override
  public void decrypt(DecryptRequest r, StreamObserver<DecryptResponse> out) {
    if (!admit(out)) return;
    try {
      out.onNext(DecryptResponse.newBuilder().setVersion(1).setPlaintext(ByteString.copyFrom(
          open(r.getCiphertext().toByteArray(), r.getAdditionalAuthenticatedData().toByteArray()))).build());
      out.onCompleted();
    } catch (GeneralSecurityException e) {
      out.onError(failure(Code.INVALID_ARGUMENT, "DECRYPTION_FAILED"));
    }
  }

  @Override
  public void generateDataKey(GenerateDataKeyRequest r, StreamObserver<GenerateDataKeyResponse> out) {
    if (!admit(out)) return;
    try {
      byte[] dk = new byte[r.getLengthBytes() == 0 ? 32 : r.getLengthBytes()];
      new SecureRandom().nextBytes(dk);
      out.onNext(GenerateDataKeyResponse.newBuilder().setVersion(1).setPlaintext(ByteString.copyFrom(dk))
          .setCiphertext(ByteString.copyFrom(seal(dk, r.getAdditionalAuthenticatedData().toByteArray()))).build());
      out.onCompleted();
    } catch (GeneralSecurityException e) {
      out.onError(Status.INTERNAL.asRuntimeException());
    }
  }

  /** The item counts of the batch calls received. */
  final java.util.List<Integer> batchSizes = new java.util.concurrent.CopyOnWriteArrayList<>();

  /** Encrypts each item; an item for key "x/missing" fails NOT_FOUND KEY_NOT_FOUND. */
  @Override
  public void batchEncrypt(io.tpmkms.proto.key.v1.BatchEncryptRequest r,
      StreamObserver<io.tpmkms.proto.key.v1.BatchEncryptResponse> out) {
    if (!admit(out)) return;
    batchSizes.add(r.getItemsCount());
    var b = io.tpmkms.proto.key.v1.BatchEncryptResponse.newBuilder();
    try {
      for (EncryptRequest item : r.getItemsList()) {
        if (item.getKey().equals("x/missing")) {
          b.addResultsBuilder().setError(io.grpc.protobuf.StatusProto.fromThrowable(failure(Code.NOT_FOUND,
              "KEY_NOT_FOUND")));
        } else {
          b.addResultsBuilder().setResponse(EncryptResponse.newBuilder().setVersion(1).setCiphertext(
              ByteString.copyFrom(seal(item.getPlaintext().toByteArray(),
                  item.getAdditionalAuthenticatedData().toByteArray()))));
        }
      }
    } catch (GeneralSecurityException e) {
      out.onError(Status.INTERNAL.asRuntimeException());
      return;
    }
    out.onNext(b.build());
    out.onCompleted();
  }

  @Override
  public void rotateKey(RotateKeyRequest r, StreamObserver<RotateKeyResponse> out) {
    if (!admit(out)) return;
    out.onNext(RotateKeyResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination();
  }
}

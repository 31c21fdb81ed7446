package io.tpmkms.kmsplugin;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.DecryptResponse;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import io.tpmkms.proto.key.v1.RotateKeyResponse;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A key service for the plugin's unit tests, on a real TCP port: keys with versions (RotateKey adds
 * one and makes it primary), ciphertexts in ADR 0001's format ({@code 0x01 | version | nonce |
 * AES-GCM}, the request's AAD authenticated), failures queued by the test, a delay to play a hung
 * service, and stop/restart on the same port.
 */
final class FakeKeyService extends KeyServiceGrpc.KeyServiceImplBase implements AutoCloseable {
  private static final SecureRandom RANDOM = new SecureRandom();
  final AtomicInteger calls = new AtomicInteger();
  final Queue<StatusRuntimeException> failures = new ArrayDeque<>();
  /** What each call asked: "Encrypt k8s/etcd" etc. */
  final List<String> log = new CopyOnWriteArrayList<>();
  volatile long delayMillis;
  private final Map<String, List<SecretKeySpec>> keys = new ConcurrentHashMap<>();
  private final int port;
  private Server server;

  FakeKeyService(String... keyNames) throws IOException {
    for (String k : keyNames) {
      keys.put(k, new CopyOnWriteArrayList<>());
      rotate(k);
    }
    server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(this).build().start();
    port = server.getPort();
  }

  String target() {
    return "127.0.0.1:" + port;
  }

  /** A new primary version of {@code key}; its number. */
  int rotate(String key) {
    byte[] k = new byte[32];
    RANDOM.nextBytes(k);
    List<SecretKeySpec> versions = keys.get(key);
    versions.add(new SecretKeySpec(k, "AES"));
    return versions.size();
  }

  void stop() throws InterruptedException {
    server.shutdownNow().awaitTermination();
  }

  void restart() throws IOException {
    server = Grpc.newServerBuilderForPort(port, InsecureServerCredentials.create()).addService(this).build().start();
  }

  static StatusRuntimeException failure(Code code, String reason) {
    return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder().setCode(code.getNumber())
        .setMessage("refused for the test").addDetails(Any.pack(ErrorInfo.newBuilder().setReason(reason)
            .setDomain("tpmkms.io").putMetadata("key", "k8s/etcd").build())).build());
  }

  private boolean admit(String what, StreamObserver<?> out) {
    calls.incrementAndGet();
    log.add(what);
    if (delayMillis > 0) {
      try {
        Thread.sleep(delayMillis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    StatusRuntimeException f;
    synchronized (failures) {
      f = failures.poll();
    }
    if (f != null) {
      out.onError(f);
      return false;
    }
    return true;
  }

  @Override
  public void encrypt(EncryptRequest r, StreamObserver<EncryptResponse> out) {
    if (!admit("Encrypt " + r.getKey(), out)) return;
    List<SecretKeySpec> versions = keys.get(r.getKey());
    if (versions == null) {
      out.onError(failure(Code.NOT_FOUND, "KEY_NOT_FOUND"));
      return;
    }
    int version = versions.size();
    try {
      byte[] nonce = new byte[12];
      RANDOM.nextBytes(nonce);
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, versions.get(version - 1), new GCMParameterSpec(128, nonce));
      c.updateAAD(r.getAdditionalAuthenticatedData().toByteArray());
      byte[] sealed = c.doFinal(r.getPlaintext().toByteArray());
      ByteBuffer ct = ByteBuffer.allocate(5 + 12 + sealed.length).put((byte) 1).putInt(version).put(nonce).put(sealed);
      out.onNext(EncryptResponse.newBuilder().setVersion(version).setCiphertext(ByteString.copyFrom(ct.array())).build());
      out.onCompleted();
    } catch (GeneralSecurityException e) {
      out.onError(io.grpc.Status.INTERNAL.asRuntimeException());
    }
  }

  @Override
  public void decrypt(DecryptRequest r, StreamObserver<DecryptResponse> out) {
    if (!admit("Decrypt " + r.getKey(), out)) return;
    List<SecretKeySpec> versions = keys.get(r.getKey());
    if (versions == null) {
      out.onError(failure(Code.NOT_FOUND, "KEY_NOT_FOUND"));
      return;
    }
    byte[] ct = r.getCiphertext().toByteArray();
    int version = ct.length > 5 + 12 + 16 && ct[0] == 1 ? ByteBuffer.wrap(ct, 1, 4).getInt() : 0;
    if (version < 1 || version > versions.size()) {
      out.onError(failure(Code.INVALID_ARGUMENT, "CIPHERTEXT_INVALID"));
      return;
    }
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, versions.get(version - 1), new GCMParameterSpec(128, ct, 5, 12));
      c.updateAAD(r.getAdditionalAuthenticatedData().toByteArray());
      byte[] plaintext = c.doFinal(ct, 17, ct.length - 17);
      out.onNext(DecryptResponse.newBuilder().setVersion(version).setPlaintext(ByteString.copyFrom(plaintext)).build());
      out.onCompleted();
    } catch (GeneralSecurityException e) {
      out.onError(failure(Code.INVALID_ARGUMENT, "DECRYPTION_FAILED"));
    }
  }

  @Override
  public void rotateKey(RotateKeyRequest r, StreamObserver<RotateKeyResponse> out) {
    if (!admit("RotateKey " + r.getKey(), out)) return;
    rotate(r.getKey());
    out.onNext(RotateKeyResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination();
  }
}

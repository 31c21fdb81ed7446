package io.tpmkms.platform.rpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.error.CommonReason;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.GrpcErrors;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.proto.audit.v1.Decision;
import io.tpmkms.proto.key.v1.BatchEncryptRequest;
import io.tpmkms.proto.key.v1.BatchEncryptResponse;
import io.tpmkms.proto.key.v1.BatchEncryptResult;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.security.MessageDigest;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Batch calls through the pipeline (issue 21): one decision per distinct key, each item answered on
 * its own with the single call's error, one audit record per item (its own key, version, digest
 * without the plaintext, decision), a TPM key's items on the TPM queue, a malformed batch refused
 * as one call, and fail closed when the records cannot be written.
 */
class PipelineBatchTest {
  static final String OP = "tpmkms.key.v1.KeyService/BatchEncrypt";

  static final Rpc<EncryptRequest, EncryptResponse> ENCRYPT = Rpc.of(KeyServiceGrpc.getEncryptMethod())
      .target(q -> Target.key(q.getKey()))
      .secret(EncryptRequest.PLAINTEXT_FIELD_NUMBER)
      .version((q, r) -> r == null ? 0 : r.getVersion())
      .runs(Placement.KEY_USE_LIGHT).build();

  static final Rpc<BatchEncryptRequest, BatchEncryptResponse> BATCH = Rpc.of(KeyServiceGrpc.getBatchEncryptMethod())
      .batchOf(ENCRYPT, BatchEncryptRequest.ITEMS_FIELD_NUMBER, BatchEncryptRequest::getItemsList, 4).build();

  /** Asks every decision (nothing remembered); denies keys of namespace "deny"; refuses names with '!'. */
  static final class CountingAuthorization implements Authorization {
    final Map<String, AtomicInteger> asked = new ConcurrentHashMap<>();

    @Override
    public Verdict known(CallInfo call, String action, Target target) {
      if (target.key().contains("!")) {
        throw ServiceException.invalid(CommonReason.INVALID_REQUEST, "invalid key name");
      }
      return null;
    }

    @Override
    public CompletableFuture<Verdict> ask(CallInfo call, String action, Target target) {
      asked.computeIfAbsent(action + " " + target.key(), k -> new AtomicInteger()).incrementAndGet();
      boolean allowed = !target.key().startsWith("deny/");
      // answered later, on another thread, as the policy service's answers are
      return CompletableFuture.supplyAsync(() -> new Verdict(allowed, allowed ? "allowed by test" : "denied by test",
          Long.MAX_VALUE), CompletableFuture.delayedExecutor(20, TimeUnit.MILLISECONDS));
    }

    @Override
    public RuntimeException denied(Verdict verdict, String action, Target target) {
      return new ServiceException(ErrorCode.PERMISSION_DENIED, CommonReason.INTERNAL, "permission denied: "
          + verdict.reason());
    }
  }

  record Recorded(String key, int version, String outcome, String reason, String details, Decision decision,
      byte[] digest, String eventId) {}

  static final class RecordingAuditing implements Auditing {
    final List<Recorded> records = new CopyOnWriteArrayList<>();
    volatile boolean failing;

    @Override
    public boolean enabled() { return true; }

    @Override
    public boolean everyCall() { return true; }

    @Override
    public CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason) {
      if (failing) return CompletableFuture.failedFuture(new ServiceException(ErrorCode.UNAVAILABLE,
          CommonReason.AUDIT_UNAVAILABLE, "the audit journal is full"));
      records.add(new Recorded(key, version, outcome, reason, call.details(), call.decision(), call.requestDigest(),
          call.eventId));
      return CompletableFuture.completedFuture(null);
    }
  }

  final CountingAuthorization authz = new CountingAuthorization();
  final RecordingAuditing audit = new RecordingAuditing();
  final List<String> threads = new CopyOnWriteArrayList<>();

  Pipeline pipeline(KeyRouter router) {
    return Pipeline.builder(new GrpcErrors("DATABASE_UNAVAILABLE"), CommonReason.INTERNAL)
        .authorization(authz).auditing(audit).keys(router).build();
  }

  static EncryptRequest item(String key, String plaintext) {
    return EncryptRequest.newBuilder().setKey(key).setPlaintext(ByteString.copyFromUtf8(plaintext)).build();
  }

  /** The handler: "v7" for every key but "x/missing", which is NOT_FOUND. */
  EncryptResponse encrypt(EncryptRequest q) {
    threads.add(q.getKey() + "@" + Thread.currentThread().getName());
    if (q.getKey().equals("x/missing")) {
      throw ServiceException.notFound(CommonReason.INTERNAL, "key x/missing not found", Map.of());
    }
    return EncryptResponse.newBuilder().setCiphertext(ByteString.copyFromUtf8("ct:" + q.getPlaintext().toStringUtf8()))
        .setVersion(7).build();
  }

  /** Runs the batch as a call of the service and waits for its one answer. */
  Object call(Pipeline pipeline, BatchEncryptRequest request) throws Exception {
    CompletableFuture<Object> answer = new CompletableFuture<>();
    CallInfo.system(OP).inContext().run(() -> pipeline.batch(BATCH, ENCRYPT, request, new StreamObserver<>() {
      @Override
      public void onNext(BatchEncryptResponse value) {
        answer.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        answer.complete(t);
      }

      @Override
      public void onCompleted() {
      }
    }, this::encrypt, results -> {
      BatchEncryptResponse.Builder b = BatchEncryptResponse.newBuilder();
      for (var r : results) {
        b.addResults(r.ok() ? BatchEncryptResult.newBuilder().setResponse(r.response())
            : BatchEncryptResult.newBuilder().setError(r.error()));
      }
      return b.build();
    }));
    return answer.get(10, TimeUnit.SECONDS);
  }

  static String reason(com.google.rpc.Status s) throws Exception {
    for (var any : s.getDetailsList()) {
      if (any.is(ErrorInfo.class)) return any.unpack(ErrorInfo.class).getReason();
    }
    return "";
  }

  @Test
  void mixedItems_eachAnsweredOnItsOwn_oneDecisionPerDistinctKey_oneRecordPerItem() throws Exception {
    BatchEncryptRequest request = BatchEncryptRequest.newBuilder()
        .addItems(item("a/k", "secret one"))
        .addItems(item("deny/k", "secret two"))
        .addItems(item("a/k", "secret three"))
        .addItems(item("x/missing", "secret four"))
        .build();
    Object answer = call(pipeline(KeyRouter.WORKERS), request);
    BatchEncryptResponse r = (BatchEncryptResponse) answer;
    assertEquals(4, r.getResultsCount());
    assertEquals("ct:secret one", r.getResults(0).getResponse().getCiphertext().toStringUtf8());
    assertEquals(Status.Code.PERMISSION_DENIED.value(), r.getResults(1).getError().getCode());
    assertTrue(r.getResults(1).getError().getMessage().contains("denied by test"), r.getResults(1).toString());
    assertEquals("ct:secret three", r.getResults(2).getResponse().getCiphertext().toStringUtf8());
    assertEquals(Status.Code.NOT_FOUND.value(), r.getResults(3).getError().getCode());
    assertEquals("INTERNAL", reason(r.getResults(3).getError()), "the single call's ErrorInfo reason");

    assertEquals(Map.of("Encrypt a/k", 1, "Encrypt deny/k", 1, "Encrypt x/missing", 1),
        Map.copyOf(authz.asked.entrySet().stream().collect(java.util.stream.Collectors.toMap(Map.Entry::getKey,
            e -> e.getValue().get()))), "one decision per distinct key, as the single call's action");
    assertFalse(threads.contains("deny/k@" + Thread.currentThread().getName()));
    assertEquals(3, threads.size(), "the denied item never ran: " + threads);

    assertEquals(4, audit.records.size(), "one record per item, none for the call");
    List<Recorded> recs = audit.records;
    assertEquals(List.of("a/k", "deny/k", "a/k", "x/missing"), recs.stream().map(Recorded::key).toList());
    assertEquals(List.of("OK", "PERMISSION_DENIED", "OK", "NOT_FOUND"), recs.stream().map(Recorded::outcome).toList());
    assertEquals(List.of(7, 0, 7, 0), recs.stream().map(Recorded::version).toList());
    assertEquals(List.of("item 1 of 4", "item 2 of 4", "item 3 of 4", "item 4 of 4"),
        recs.stream().map(Recorded::details).toList());
    assertEquals(List.of(Decision.ALLOW, Decision.DENY, Decision.ALLOW, Decision.ALLOW),
        recs.stream().map(Recorded::decision).toList());
    assertEquals(4, recs.stream().map(Recorded::eventId).distinct().count(), "an event id per item");
    // each item's digest is the single call's: SHA-256 of the item without its plaintext
    byte[] expected = MessageDigest.getInstance("SHA-256").digest(
        request.getItems(0).toBuilder().clearPlaintext().build().toByteArray());
    assertArrayEquals(expected, recs.get(0).digest());
    assertArrayEquals(recs.get(0).digest(), recs.get(2).digest(), "same key, same AAD, plaintext left out");
  }

  @Test
  void invalidKeyName_isThatItemsError_notTheCalls() throws Exception {
    BatchEncryptResponse r = (BatchEncryptResponse) call(pipeline(KeyRouter.WORKERS), BatchEncryptRequest.newBuilder()
        .addItems(item("bad!name", "p")).addItems(item("a/k", "p")).build());
    assertEquals(Status.Code.INVALID_ARGUMENT.value(), r.getResults(0).getError().getCode());
    assertTrue(r.getResults(1).hasResponse());
    assertEquals(List.of("INVALID_ARGUMENT", "OK"), audit.records.stream().map(Recorded::outcome).toList());
  }

  @Test
  void malformedBatch_refusedAsOneCall_withOneRecord() throws Exception {
    Object none = call(pipeline(KeyRouter.WORKERS), BatchEncryptRequest.getDefaultInstance());
    assertEquals(Status.Code.INVALID_ARGUMENT, Status.fromThrowable((Throwable) none).getCode());
    BatchEncryptRequest.Builder five = BatchEncryptRequest.newBuilder();
    for (int i = 0; i < 5; i++) five.addItems(item("a/k", "p" + i));
    Object tooMany = call(pipeline(KeyRouter.WORKERS), five.build());
    Status s = Status.fromThrowable((Throwable) tooMany);
    assertEquals(Status.Code.INVALID_ARGUMENT, s.getCode());
    assertTrue(s.getDescription().contains("1 to 4 items; this one has 5"), s.getDescription());
    assertEquals(List.of(), threads, "nothing ran");
    assertEquals(Map.of(), authz.asked, "nothing was asked");
    assertEquals(List.of("INVALID_ARGUMENT", "INVALID_ARGUMENT"), audit.records.stream().map(Recorded::outcome).toList());
    // the call's own digest leaves the items out (their plaintexts)
    assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(new byte[0]), audit.records.get(1).digest());
  }

  @Test
  void tpmKeysItems_runOnTheTpmQueue_theOthersOnAWorker() throws Exception {
    KeyRouter router = (key, light) -> key.startsWith("tpm/") ? KeyRouter.Where.TPM_QUEUE : KeyRouter.Where.HERE;
    BatchEncryptResponse r = (BatchEncryptResponse) call(pipeline(router), BatchEncryptRequest.newBuilder()
        .addItems(item("tpm/a", "1")).addItems(item("soft/b", "2")).addItems(item("tpm/a", "3")).build());
    assertEquals(3, r.getResultsCount());
    assertEquals("ct:3", r.getResults(2).getResponse().getCiphertext().toStringUtf8(), "results in the items' order");
    for (String t : threads) {
      if (t.startsWith("tpm/")) {
        assertTrue(t.endsWith("@tpm-queue"), t);
      } else {
        assertFalse(t.endsWith("@tpm-queue"), t);
      }
    }
  }

  /**
   * A long batch on TPM keys does not hold the TPM queue: its items are queued one after another, so a
   * single call that arrives meanwhile runs after the item in progress, not after the whole batch.
   */
  @Test
  void aLongTpmBatch_letsASingleCallThrough() throws Exception {
    KeyRouter router = (key, light) -> key.startsWith("tpm/") ? KeyRouter.Where.TPM_QUEUE : KeyRouter.Where.HERE;
    Pipeline pipeline = pipeline(router);
    BatchEncryptRequest.Builder b = BatchEncryptRequest.newBuilder();
    for (int i = 0; i < 4; i++) b.addItems(item("tpm/slow", "item " + i));
    java.util.List<String> order = new CopyOnWriteArrayList<>();
    CompletableFuture<Object> batch = new CompletableFuture<>();
    java.util.concurrent.CountDownLatch running = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    CallInfo.system(OP).inContext().run(() -> pipeline.batch(BATCH, ENCRYPT, b.build(), observer(batch), q -> {
      order.add(q.getPlaintext().toStringUtf8());
      if (order.size() == 1) { // the first item holds the TPM queue until the single call is queued behind it
        running.countDown();
        assertTrue(release.await(10, TimeUnit.SECONDS));
      } else {
        Thread.sleep(20); // a slow TPM command
      }
      return EncryptResponse.getDefaultInstance();
    }, results -> BatchEncryptResponse.getDefaultInstance()));
    assertTrue(running.await(10, TimeUnit.SECONDS), "the first item runs");
    CompletableFuture<Object> single = new CompletableFuture<>();
    CallInfo.system("tpmkms.key.v1.KeyService/Encrypt").inContext().run(() -> pipeline.unary(ENCRYPT,
        item("tpm/other", "single"), observer(single), () -> {
          order.add("single");
          return EncryptResponse.getDefaultInstance();
        }));
    Thread.sleep(500); // the single call's verdict (20 ms late) arrives and it is queued behind the first item
    release.countDown();
    single.get(10, TimeUnit.SECONDS);
    batch.get(10, TimeUnit.SECONDS);
    assertEquals("single", order.get(1), "the single call ran after one item, not after the batch: " + order);
    assertEquals(5, order.size());
  }

  static <T> StreamObserver<T> observer(CompletableFuture<Object> answer) {
    return new StreamObserver<>() {
      @Override
      public void onNext(T value) {
        answer.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        answer.complete(t);
      }

      @Override
      public void onCompleted() {
      }
    };
  }

  @Test
  void recordsCannotBeWritten_theCallFailsUnavailable() throws Exception {
    audit.failing = true;
    Object answer = call(pipeline(KeyRouter.WORKERS), BatchEncryptRequest.newBuilder()
        .addItems(item("a/k", "p")).build());
    assertTrue(answer instanceof Throwable, String.valueOf(answer));
    assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable((Throwable) answer).getCode());
  }
}

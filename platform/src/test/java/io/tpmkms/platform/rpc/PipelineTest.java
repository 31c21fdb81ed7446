package io.tpmkms.platform.rpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.grpc.Status;
import io.tpmkms.platform.audit.CallInfo;
import io.grpc.stub.StreamObserver;
import io.tpmkms.platform.error.CommonReason;
import io.tpmkms.platform.error.GrpcErrors;
import io.tpmkms.proto.key.v1.GenerateRandomRequest;
import io.tpmkms.proto.key.v1.GenerateRandomResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** What the pipeline answers when a service's own step misbehaves. */
class PipelineTest {

  /**
   * An authorizer that throws from {@code ask} instead of failing its future (the key service's did,
   * with a NullPointerException, for a call that came before its start-up observer opened the
   * channel to the policy service): the call ends INTERNAL through the error model, never UNKNOWN,
   * and the handler does not run.
   */
  @Test
  void authorizerThrowingFromAsk_endsTheCallInternal_andNothingRuns() {
    Authorization throwing = new Authorization() {
      @Override
      public Verdict known(CallInfo call, String action, Target target) {
        return null; // must be asked
      }

      @Override
      public CompletableFuture<Verdict> ask(CallInfo call, String action, Target target) {
        throw new NullPointerException("channel");
      }

      @Override
      public RuntimeException denied(Verdict verdict, String action, Target target) {
        return new IllegalStateException("denied");
      }
    };
    Pipeline pipeline = Pipeline.builder(new GrpcErrors("DATABASE_UNAVAILABLE"), CommonReason.INTERNAL)
        .authorization(throwing).build();
    Rpc<GenerateRandomRequest, GenerateRandomResponse> rpc = Rpc.of(KeyServiceGrpc.getGenerateRandomMethod())
        .target(q -> Target.deployment()).runs(Placement.EVENT_LOOP).build();
    AtomicReference<Throwable> error = new AtomicReference<>();
    AtomicBoolean ran = new AtomicBoolean();
    pipeline.unary(rpc, GenerateRandomRequest.getDefaultInstance(), new StreamObserver<>() {
      @Override
      public void onNext(GenerateRandomResponse value) {
      }

      @Override
      public void onError(Throwable t) {
        error.set(t);
      }

      @Override
      public void onCompleted() {
      }
    }, () -> {
      ran.set(true);
      return GenerateRandomResponse.getDefaultInstance();
    });
    assertNotNull(error.get(), "the call was not answered");
    assertEquals(Status.Code.INTERNAL, Status.fromThrowable(error.get()).getCode(), String.valueOf(error.get()));
    assertFalse(ran.get(), "the handler ran without a decision");
  }
}

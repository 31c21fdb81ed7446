package io.tpmkms.audit.api;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static io.tpmkms.audit.testing.AuditEvents.event;

import io.grpc.Status;
import io.quarkus.test.common.TestResourceScope;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcClient;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.*;
import org.junit.jupiter.api.Test;

/** With the database gone, every RPC answers UNAVAILABLE (DATABASE_UNAVAILABLE), never UNKNOWN or INTERNAL. */
@QuarkusTest
@WithTestResource(value = PostgresResource.class, scope = TestResourceScope.RESTRICTED_TO_CLASS,
    initArgs = {
    @ResourceArg(name = "durable", value = "true"), @ResourceArg(name = "audit-journal", value = "false")})
class DatabaseDownTest {

  @Test
  void databaseDown_isUnavailable() throws Exception {
    try (GrpcClient client = new GrpcClient()) {
      client.audit().appendEvents(AppendEventsRequest.newBuilder().addEvents(event("p", "", "op")).build());
      PostgresResource.stopDatabase();
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE", () -> client.audit().appendEvents(
          AppendEventsRequest.newBuilder().addEvents(event("p", "", "op")).build()));
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE",
          () -> client.audit().queryRecords(QueryRecordsRequest.getDefaultInstance()));
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE",
          () -> client.audit().verifyChain(VerifyChainRequest.getDefaultInstance()));
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE",
          () -> client.audit().getCheckpoint(GetCheckpointRequest.getDefaultInstance()));
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE", () -> client.audit()
          .exportRecords(ExportRecordsRequest.getDefaultInstance()).forEachRemaining(c -> { }));
    }
  }
}

package io.tpmkms.policy.store;

import static io.tpmkms.testing.GrpcClient.assertFailure;
import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.Status;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.policy.testing.PolicyClient;
import io.tpmkms.proto.policy.v1.*;
import io.tpmkms.platform.auth.Principal;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * With its database gone, the policy service keeps deciding from the state it
 * loaded (decisions never wait for the database), and changes and reads fail
 * UNAVAILABLE (DATABASE_UNAVAILABLE), never UNKNOWN.
 */
@QuarkusTest
@TestProfile(DatabaseDownTest.OwnDatabase.class)
class DatabaseDownTest {
  /** A PostgreSQL of this test's own, which the test stops. */
  public static class StoppablePostgres implements QuarkusTestResourceLifecycleManager {
    static volatile EmbeddedPostgres pg;

    @Override
    public Map<String, String> start() {
      try {
        pg = EmbeddedPostgres.builder().start();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      return Map.of("quarkus.datasource.jdbc.url", pg.getJdbcUrl("postgres", "postgres"),
          "quarkus.datasource.username", "postgres", "quarkus.datasource.password", "postgres");
    }

    @Override
    public void stop() {
      try {
        if (pg != null) pg.close();
      } catch (IOException ignored) {
        // already stopped by the test
      }
    }
  }

  public static class OwnDatabase implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      return Map.of("quarkus.datasource.jdbc.acquisition-timeout", "2S");
    }

    @Override
    public List<TestResourceEntry> testResources() {
      return List.of(new TestResourceEntry(StoppablePostgres.class));
    }
  }

  @Test
  void databaseDown_decisionsContinue_changesUnavailable() throws Exception {
    try (PolicyClient client = new PolicyClient()) {
      Principal user = new Principal("db-user", "db-user", "c", List.of("tpmkms-user"), List.of(), List.of(), "i");
      AuthorizeRequest ask = AuthorizeRequest.newBuilder().setPrincipal(user.toProto()).setAction("Encrypt")
          .setResource(Resource.newBuilder().setNamespace("n").setKeyName("k")).build();
      assertEquals(Decision.ALLOW, client.policies().authorize(ask).getDecision());

      StoppablePostgres.pg.close();

      for (int i = 0; i < 5; i++) {
        assertEquals(Decision.ALLOW, client.policies().authorize(ask).getDecision());
        Thread.sleep(300); // several failed revision polls in between
      }
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE", () -> client.policies().createPolicy(
          CreatePolicyRequest.newBuilder().setId("while-down")
              .setText("forbid(principal, action == Tpmkms::Action::\"ExportKeyVersion\", resource);").build()));
      assertStatus(Status.Code.UNAVAILABLE, "DATABASE_UNAVAILABLE", () -> client.policies().listRoleBindings(
          ListRoleBindingsRequest.getDefaultInstance()));
    }
  }
}

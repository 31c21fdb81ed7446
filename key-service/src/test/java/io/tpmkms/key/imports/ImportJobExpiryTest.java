package io.tpmkms.key.imports;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.agroal.api.AgroalDataSource;
import io.grpc.Status;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import jakarta.inject.Inject;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Import jobs expire after their lifetime (2 s here): the scheduler marks them EXPIRED and drops the wrapping key. */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@TestProfile(ImportJobExpiryTest.ShortLifetime.class)
class ImportJobExpiryTest extends GrpcTest {
  public static class ShortLifetime implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      // lost generations are not picked up here: a job that is never generated must expire on its own
      return Map.of("tpmkms.imports.job-lifetime", "2S", "tpmkms.imports.check-interval", "500ms",
          "tpmkms.imports.pending-grace", "1H");
    }
  }

  @Inject AgroalDataSource db;

  @Test
  void job_expiresAfterItsLifetime_itsWrappingKeyIsGone_andImportsAreRefused() throws Exception {
    ImportJob j = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace("expiry")
        .setJobId("short").setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
        .setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    // a 2 s lifetime: a machine that stalls that long between the generation and the answer sees it expired
    assertTrue(j.getState() == ImportJobState.ACTIVE || j.getState() == ImportJobState.EXPIRED, j.getState().name());
    assertEquals(2, j.getExpireTime().getSeconds() - j.getGenerateTime().getSeconds()
        + (j.getExpireTime().getNanos() - j.getGenerateTime().getNanos()) / 1_000_000_000);
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("expiry").setName("k")
        .setPurpose(KeyPurpose.MAC).setImportOnly(true).build());

    GetImportJobRequest get = GetImportJobRequest.newBuilder().setImportJob("expiry/short").build();
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (j.getState() != ImportJobState.EXPIRED && System.nanoTime() < deadline) {
      Thread.sleep(200);
      j = client.keys().getImportJob(get).getImportJob();
    }
    assertEquals(ImportJobState.EXPIRED, j.getState());
    assertTrue(j.hasExpireEventTime());
    assertTrue(j.getPublicKeyPem().isEmpty(), "an expired job offers no wrapping key");
    try (Connection c = db.getConnection(); var st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT wrapping_key_blob FROM import_job WHERE job_id = 'short'")) {
      assertTrue(rs.next());
      assertNull(rs.getBytes(1), "the blob is deleted");
    }
    assertStatus(Status.Code.FAILED_PRECONDITION, "IMPORT_JOB_EXPIRED", () -> client.keys().importKeyVersion(
        ImportKeyVersionRequest.newBuilder().setKey("expiry/k").setImportJob("expiry/short")
            .setAlgorithm(Algorithm.HMAC_SHA256).setWrappedKey(ByteString.copyFrom(new byte[424])).build()));
    assertEquals(0, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey("expiry/k")
        .setIncludeDestroyed(true).build()).getVersionsCount());
  }

  @Test
  void jobNeverGenerated_expiresAfterALifetimeFromItsCreation_insteadOfLingering() throws Exception {
    // a job whose wrapping key generation keeps failing (here: never attempted) stays unusable
    try (Connection c = db.getConnection(); var st = c.createStatement()) {
      st.executeUpdate("INSERT INTO import_job (id, namespace, job_id, method, protection_level, state, backend_id,"
          + " lifetime_seconds, create_time, row_version) VALUES (nextval('import_job_seq'), 'expiry', 'stuck',"
          + " 'RSA_OAEP_3072_SHA256_AES_256', 'SOFTWARE', 'PENDING_GENERATION', 'software', 2,"
          + " now() - interval '10 seconds', 0)");
    }
    GetImportJobRequest get = GetImportJobRequest.newBuilder().setImportJob("expiry/stuck").build();
    ImportJob j = client.keys().getImportJob(get).getImportJob();
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (j.getState() != ImportJobState.EXPIRED && System.nanoTime() < deadline) {
      Thread.sleep(200);
      j = client.keys().getImportJob(get).getImportJob();
    }
    assertEquals(ImportJobState.EXPIRED, j.getState());
    assertTrue(j.hasExpireEventTime());
    assertTrue(!j.hasGenerateTime() && j.getPublicKeyPem().isEmpty(), "it never had a wrapping key");
  }
}

package io.tpmkms.key.lifecycle;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import io.grpc.Status;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.key.v1.*;
// the API's types, not this package's namesakes
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersionState;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The rotation scheduler inside one key-service (the two-replica case is KeyServiceReplicasIT). */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class ScheduledRotationTest extends GrpcTest {
  @jakarta.inject.Inject io.micrometer.core.instrument.MeterRegistry registry;
  @jakarta.inject.Inject io.tpmkms.key.metrics.CatalogueMetrics catalogueMetrics;

  private double scheduledRotations() {
    return registry.get("tpmkms.key.rotations").tag("trigger", "scheduled").counter().count();
  }

  @Test
  void dueKey_isRotatedOncePerPeriod_andScheduleAdvances() throws Exception {
    double rotatedBefore = scheduledRotations();
    Instant first = Instant.now().plusSeconds(1);
    Key k = client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("sched").setName("auto")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setRotationPeriod(Duration.newBuilder().setSeconds(3))
        .setNextRotationTime(Timestamp.newBuilder().setSeconds(first.getEpochSecond()).setNanos(first.getNano()))
        .build()).getKey();
    assertEquals(1, k.getPrimaryVersion());
    // due at +1 s and +4 s: wait for both rotations
    Key after = k;
    long deadline = System.nanoTime() + 25_000_000_000L;
    while (after.getPrimaryVersion() < 3 && System.nanoTime() < deadline) {
      Thread.sleep(200);
      after = client.keys().getKey(GetKeyRequest.newBuilder().setKey("sched/auto").build()).getKey();
    }
    // the key keeps rotating every 3 s: read the key and its versions until both come from between two rotations
    List<KeyVersion> versions = client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder()
        .setKey("sched/auto").build()).getVersionsList();
    long consistent = System.nanoTime() + 10_000_000_000L;
    while (versions.size() != after.getPrimaryVersion() && System.nanoTime() < consistent) {
      Thread.sleep(50);
      after = client.keys().getKey(GetKeyRequest.newBuilder().setKey("sched/auto").build()).getKey();
      versions = client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey("sched/auto").build())
          .getVersionsList();
    }
    assertEquals(after.getPrimaryVersion(), versions.size(), "every version listed, the newest primary");
    int rotations = after.getPrimaryVersion() - 1;
    assertTrue(rotations >= 2, "the scheduler rotated the key twice, got " + rotations);
    // issue 18: the rotations are counted (by the scheduler's thread, just after the commit that made them
    // visible), and the catalogue's gauges see the versions
    long counted = System.nanoTime() + 5_000_000_000L;
    while (scheduledRotations() - rotatedBefore < rotations && System.nanoTime() < counted) Thread.sleep(50);
    assertTrue(scheduledRotations() - rotatedBefore >= rotations,
        "rotations counted: " + (scheduledRotations() - rotatedBefore) + " of " + rotations);
    catalogueMetrics.count();
    double enabled = registry.get("tpmkms.key.versions").tag("state", "ENABLED").gauge().value();
    assertTrue(enabled >= rotations + 1, "enabled versions in the gauge: " + enabled + ", at least " + (rotations + 1));
    assertTrue(registry.get("tpmkms.keys").tag("purpose", "ENCRYPT_DECRYPT").gauge().value() >= 1);
    assertTrue(registry.get("tpmkms.key.rotations.due").gauge().value() >= 0, "a count, not NaN");
    // a rotation made within its period moves the schedule by exactly one period; one made later than a whole
    // period after its due time (a stalled machine) starts the schedule again from its own time
    boolean allOnTime = true;
    for (int j = 1; j < versions.size(); j++) {
      allOnTime &= toMillis(versions.get(j).getCreateTime()) < first.toEpochMilli() + 3_000L * j;
    }
    if (allOnTime) {
      assertEquals(first.getEpochSecond() + 3L * rotations, after.getNextRotationTime().getSeconds(),
          "the schedule moved by exactly one period per rotation");
    } else {
      assertTrue(after.getNextRotationTime().getSeconds() >= first.getEpochSecond() + 3L * rotations,
          "the schedule moved by at least one period per rotation");
    }
    // the j-th rotation (version j + 1) never happens before its due time first + (j-1) * 3 s; a
    // second rotation for the same due time would come right after the first and fail this
    // (it may be late on a loaded machine, so no upper bound)
    for (int j = 1; j < versions.size(); j++) {
      long created = toMillis(versions.get(j).getCreateTime());
      long due = first.toEpochMilli() + 3_000L * (j - 1);
      assertTrue(created >= due, "rotation " + j + " at " + created + " came before its due time " + due);
    }
  }

  private static long toMillis(Timestamp t) {
    return t.getSeconds() * 1000 + t.getNanos() / 1_000_000;
  }

  @Test
  void keyWithoutSchedule_isNeverRotated() throws Exception {
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("sched").setName("manual")
        .setPurpose(KeyPurpose.MAC).build());
    Thread.sleep(2_500);
    assertEquals(1, client.keys().getKey(GetKeyRequest.newBuilder().setKey("sched/manual").build()).getKey()
        .getPrimaryVersion());
  }

  @Test
  void createKey_sameNameConcurrently_exactlyOneWins() throws Exception {
    List<CompletableFuture<Status.Code>> calls = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      calls.add(CompletableFuture.supplyAsync(() -> {
        try {
          client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("sched").setName("race")
              .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).build());
          return Status.Code.OK;
        } catch (io.grpc.StatusRuntimeException e) {
          return e.getStatus().getCode();
        }
      }));
    }
    List<Status.Code> codes = new ArrayList<>();
    for (var c : calls) codes.add(c.get(60, TimeUnit.SECONDS));
    assertEquals(1, codes.stream().filter(c -> c == Status.Code.OK).count(), codes.toString());
    assertEquals(5, codes.stream().filter(c -> c == Status.Code.ALREADY_EXISTS).count(), codes.toString());
    assertEquals(1, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey("sched/race").build())
        .getVersionsCount());
    assertStatus(Status.Code.ALREADY_EXISTS, "KEY_ALREADY_EXISTS", () -> client.keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("sched").setName("race").setPurpose(KeyPurpose.MAC).build()));
  }
}

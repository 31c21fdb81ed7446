package io.tpmkms.key.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.key.crypto.KeyCache;
import io.tpmkms.key.lifecycle.KeyNames;
import io.tpmkms.testing.GrpcClient;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;
import org.hibernate.SessionFactory;
import org.junit.jupiter.api.Test;

/**
 * When a key's cache entry has expired, the calls that want it at that moment
 * share one database read instead of each taking a connection (on the real
 * PostgreSQL; counted with Hibernate's statistics).
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@TestProfile(KeyCacheSingleFlightTest.CountQueries.class)
class KeyCacheSingleFlightTest {
  public static class CountQueries implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      return Map.of("quarkus.hibernate-orm.statistics", "true", "tpmkms.cache.ttl", "1S");
    }
  }

  @Inject KeyCache cache;
  @Inject SessionFactory sessions;

  private long versionReads() {
    return sessions.getStatistics()
        .getQueryStatistics("select v from KeyVersionEntity v where v.keyId = :id").getExecutionCount();
  }

  @Test
  void expiredKey_isReadOnce_forAllCallsWaitingForIt() throws Exception {
    try (GrpcClient client = new GrpcClient()) {
      client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("flight").setName("k")
          .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    }
    KeyNames.KeyName name = KeyNames.parse("flight/k");
    assertTrue(sessions.getStatistics().isStatisticsEnabled(), "Hibernate statistics are on");
    // counted per query (the versions read of KeyCatalogue.findKeyWithVersions), not as all prepared
    // statements: the service's background jobs prepare statements of their own meanwhile
    long r0 = versionReads();
    assertEquals(1, cache.reload(name).primaryVersion());
    assertEquals(1, versionReads() - r0, "a read of the key runs the versions query once");
    Thread.sleep(1_200); // the entry expires
    int callers = 64;
    CyclicBarrier start = new CyclicBarrier(callers);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    List<Thread> threads = new ArrayList<>();
    long before = versionReads();
    for (int i = 0; i < callers; i++) {
      Thread t = new Thread(() -> {
        try {
          start.await();
          if (cache.get(name).primaryVersion() != 1) throw new AssertionError("wrong key read");
        } catch (Throwable e) {
          failure.compareAndSet(null, e);
        }
      });
      threads.add(t);
      t.start();
    }
    for (Thread t : threads) t.join();
    if (failure.get() != null) throw new AssertionError(failure.get());
    long reads = versionReads() - before;
    // one caller reads for all (a second read only if a caller races the first one's end); without
    // sharing, every caller would read: 64 reads
    assertTrue(reads >= 1 && reads <= 2, callers + " callers of an expired key read it " + reads + " times");
  }
}

package io.tpmkms.key.catalogue;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.key.catalogue.KeyCatalogue.KeyAndPrimary;
import io.tpmkms.key.lifecycle.KeyNames.KeyName;
import io.tpmkms.key.lifecycle.KeyPurpose;
import io.tpmkms.key.lifecycle.KeyVersionState;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.testing.PostgresResource;
import jakarta.inject.Inject;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The catalogue's own contract, on the real PostgreSQL: what it inserts and
 * finds, how it numbers versions, how it pages, and how its row locks wait or
 * skip. The scheduler is off in this app, so rows with past due times stay as
 * the test left them and the claim queries see exactly this test's rows.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@TestProfile(KeyCatalogueTest.NoScheduler.class)
class KeyCatalogueTest {
  public static class NoScheduler implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      return Map.of("quarkus.scheduler.enabled", "false");
    }
  }

  /** Due times of this test lie here, long before anything the app itself would schedule. */
  private static final Instant PAST = Instant.parse("2001-01-01T00:00:00Z");
  private static final ExecutorService THREADS = Executors.newCachedThreadPool();

  @Inject KeyCatalogue catalogue;
  @Inject io.agroal.api.AgroalDataSource db;

  @AfterAll
  static void stopThreads() {
    THREADS.shutdownNow();
  }

  // ---------------------------------------------------------------------------------------------
  // insert, find, numbering

  @Test
  void insertKey_storesVersionOneAsPrimaryAndLast_andEveryFindReadsItBack() {
    KeyName kn = new KeyName("cat-ins", "k");
    KeyVersionEntity first = newVersion(new byte[] {1, 2, 3});
    KeyEntity inserted = tx(() -> {
      KeyEntity k = newKey(kn, Map.of("env", "prod"), null);
      KeyVersionEntity v = catalogue.insertKey(k, first);
      catalogue.flush();
      assertEquals(1, v.number);
      assertEquals(k.id, v.keyId);
      return k;
    });
    assertNotNull(inserted.id);
    assertEquals(1, inserted.primaryVersion);
    assertEquals(1, inserted.lastVersion);

    tx(() -> {
      KeyEntity k = catalogue.findKey(kn).orElseThrow();
      assertEquals(inserted.id, k.id);
      assertEquals(Map.of("env", "prod"), k.labels);
      assertEquals(KeyPurpose.ENCRYPT_DECRYPT, k.purpose);
      assertEquals(1, k.primaryVersion);
      assertEquals(1, k.lastVersion);
      assertEquals(0, k.rowVersion, "a new key's etag is 1 (row_version 0)");
      assertEquals(kn.full(), catalogue.findKey(k.id).orElseThrow().fullName());
      KeyVersionEntity v = catalogue.findVersion(k.id, 1).orElseThrow();
      assertEquals(KeyVersionState.ENABLED, v.state);
      assertArrayEquals(new byte[] {1, 2, 3}, v.keyBlob);
      assertTrue(catalogue.findVersion(k.id, 2).isEmpty());
      assertTrue(catalogue.findKey(new KeyName("cat-ins", "missing")).isEmpty());
      assertTrue(catalogue.findKey(new KeyName("cat-other", "k")).isEmpty());
      assertTrue(catalogue.findKey(-1L).isEmpty());
      var withVersions = catalogue.findKeyWithVersions(kn).orElseThrow();
      assertEquals(k.id, withVersions.key().id);
      assertEquals(List.of(1), withVersions.versions().stream().map(x -> x.number).toList());
      assertTrue(catalogue.findKeyWithVersions(new KeyName("cat-ins", "missing")).isEmpty());
      return null;
    });
  }

  @Test
  void nextVersions_countOnFromLastVersion_neverReuseANumber_andLeaveThePrimary() {
    KeyName kn = new KeyName("cat-num", "k");
    long id = createKey(kn, null).id;

    // a version on its own moves last_version only; one UPDATE of the key: etag + 1
    KeyVersionEntity v2 = tx(() -> {
      KeyEntity k = catalogue.lockKey(kn).orElseThrow();
      KeyVersionEntity v = catalogue.insertNextVersion(k, newVersion(new byte[] {2}));
      catalogue.flush();
      return v;
    });
    assertEquals(2, v2.number);
    assertEquals(id, v2.keyId);
    KeyEntity after2 = tx(() -> catalogue.findKey(kn).orElseThrow());
    assertEquals(2, after2.lastVersion);
    assertEquals(1, after2.primaryVersion, "the catalogue does not move the primary");
    assertEquals(1, after2.rowVersion);

    // as the lifecycle rotates: next version, made primary, one flush: still one UPDATE of the key
    tx(() -> {
      KeyEntity k = catalogue.lockKey(kn).orElseThrow();
      KeyVersionEntity v = catalogue.insertNextVersion(k, newVersion(new byte[] {3}));
      k.primaryVersion = v.number;
      catalogue.flush();
      assertEquals(3, v.number);
      return null;
    });
    KeyEntity after3 = tx(() -> catalogue.findKey(kn).orElseThrow());
    assertEquals(3, after3.primaryVersion);
    assertEquals(3, after3.lastVersion);
    assertEquals(2, after3.rowVersion, "one mutation, one etag step");

    // the newest version destroyed: its number is still not given again
    tx(() -> {
      KeyEntity k = catalogue.lockKey(kn).orElseThrow();
      k.primaryVersion = 2;
      KeyVersionEntity v = catalogue.findVersion(id, 3).orElseThrow();
      v.state = KeyVersionState.DESTROYED;
      v.keyBlob = null;
      catalogue.flush();
      return null;
    });
    int v4 = tx(() -> catalogue.insertNextVersion(catalogue.lockKey(kn).orElseThrow(), newVersion(new byte[] {4})).number);
    assertEquals(4, v4);
    List<Integer> numbers = tx(() -> catalogue.findKeyWithVersions(kn).orElseThrow().versions().stream()
        .map(v -> v.number).sorted().toList());
    assertEquals(List.of(1, 2, 3, 4), numbers);
  }

  @Test
  void secondKeyOfTheSameName_isANameConflict() {
    KeyName kn = new KeyName("cat-dup", "k");
    createKey(kn, null);
    RuntimeException e = assertThrows(RuntimeException.class, () -> createKey(kn, null));
    assertTrue(KeyCatalogue.isNameConflict(e), "not recognised as a name conflict: " + e);
    assertFalse(KeyCatalogue.isNameConflict(new IllegalStateException("other", new RuntimeException())));
    assertEquals(1, tx(() -> catalogue.findKeyWithVersions(kn).orElseThrow().versions().size()),
        "the failed insert left nothing behind");
  }

  // ---------------------------------------------------------------------------------------------
  // paging

  @Test
  void pageKeys_byNamespaceAndName_afterAPosition_filteredByLabels_withTheirPrimary() {
    for (int i = 1; i <= 5; i++) {
      Map<String, String> labels = new HashMap<>();
      if (i % 2 == 1) labels.put("env", "prod");
      if (i == 5) labels.put("tier", "gold");
      createKey(new KeyName("page-a", "a" + i), labels);
    }
    createKey(new KeyName("page-b", "b1"), Map.of("env", "prod"));
    KeyName a1 = new KeyName("page-a", "a1");
    tx(() -> {
      KeyEntity k = catalogue.lockKey(a1).orElseThrow();
      k.primaryVersion = catalogue.insertNextVersion(k, newVersion(new byte[] {9})).number;
      catalogue.flush();
      return null;
    });

    List<KeyAndPrimary> first = tx(() -> catalogue.pageKeys("page-a", Map.of(), null, null, 2));
    assertEquals(List.of("page-a/a1", "page-a/a2"), names(first));
    assertEquals(2, first.get(0).primary().number, "each key comes with its primary version");
    assertEquals(first.get(0).key().id, first.get(0).primary().keyId);
    assertEquals(1, first.get(1).primary().number);
    assertEquals(List.of("page-a/a3", "page-a/a4"),
        names(tx(() -> catalogue.pageKeys("page-a", Map.of(), "page-a", "a2", 2))));
    assertEquals(List.of(), names(tx(() -> catalogue.pageKeys("page-a", Map.of(), "page-a", "a5", 2))));
    assertEquals(List.of("page-a/a1", "page-a/a3", "page-a/a5"),
        names(tx(() -> catalogue.pageKeys("page-a", Map.of("env", "prod"), null, null, 10))));
    assertEquals(List.of("page-a/a5"),
        names(tx(() -> catalogue.pageKeys("page-a", Map.of("env", "prod", "tier", "gold"), null, null, 10))));
    assertEquals(List.of(),
        names(tx(() -> catalogue.pageKeys("page-a", Map.of("env", "dev"), null, null, 10))));
    // without a namespace the position spans namespaces
    assertEquals(List.of("page-a/a5", "page-b/b1"),
        names(tx(() -> catalogue.pageKeys(null, Map.of(), "page-a", "a4", 2))));
    assertEquals(List.of("page-b/b1"),
        names(tx(() -> catalogue.pageKeys(null, Map.of("env", "prod"), "page-a", "a5", 10))));
  }

  @Test
  void pageVersions_ascending_afterANumber_upToALimit_destroyedOnlyWhenAsked() {
    KeyName kn = new KeyName("cat-versions", "k");
    long id = createKey(kn, null).id;
    tx(() -> {
      KeyEntity k = catalogue.lockKey(kn).orElseThrow();
      for (int i = 2; i <= 4; i++) catalogue.insertNextVersion(k, newVersion(new byte[] {(byte) i}));
      catalogue.flush();
      KeyVersionEntity v2 = catalogue.findVersion(id, 2).orElseThrow();
      v2.state = KeyVersionState.DESTROYED;
      v2.keyBlob = null;
      return null;
    });
    assertEquals(List.of(1, 3, 4), numbers(tx(() -> catalogue.pageVersions(id, 0, 10, false))));
    assertEquals(List.of(1, 2, 3, 4), numbers(tx(() -> catalogue.pageVersions(id, 0, 10, true))));
    assertEquals(List.of(2, 3), numbers(tx(() -> catalogue.pageVersions(id, 1, 2, true))));
    assertEquals(List.of(3, 4), numbers(tx(() -> catalogue.pageVersions(id, 1, 2, false))));
    assertEquals(List.of(), numbers(tx(() -> catalogue.pageVersions(id, 4, 10, true))));
  }

  // ---------------------------------------------------------------------------------------------
  // due work and row locks

  @Test
  void dueForRotation_listsDueKeys_longestDueFirst_upToTheLimit() {
    long later = createKey(new KeyName("cat-due", "later"), null, PAST.plusSeconds(20)).id;
    long sooner = createKey(new KeyName("cat-due", "sooner"), null, PAST.plusSeconds(10)).id;
    createKey(new KeyName("cat-due", "not-yet"), null, PAST.plusSeconds(100));
    createKey(new KeyName("cat-due", "never"), null, null);
    assertEquals(List.of(sooner, later), tx(() -> catalogue.dueForRotation(PAST.plusSeconds(50), 10)));
    assertEquals(List.of(sooner), tx(() -> catalogue.dueForRotation(PAST.plusSeconds(50), 1)));
    assertEquals(List.of(sooner, later), tx(() -> catalogue.dueForRotation(PAST.plusSeconds(20), 10)),
        "due at exactly its time");
    assertEquals(List.of(), tx(() -> catalogue.dueForRotation(PAST.plusSeconds(9), 10)));
  }

  @Test
  void lockKey_waitsForTheHolder_whileClaimsSkipTheLockedRow() throws Exception {
    KeyName kn = new KeyName("cat-lock", "k");
    Instant due = Instant.now().plus(1000, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);
    long id = createKey(kn, null, due).id;

    CountDownLatch locked = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<Void> holder = CompletableFuture.runAsync(() -> tx(() -> {
      catalogue.lockKey(kn).orElseThrow();
      locked.countDown();
      await(release);
      return null;
    }), THREADS);
    try {
      assertTrue(locked.await(30, TimeUnit.SECONDS), "the holder took the lock");
      assertTrue(tx(() -> catalogue.claimDueForRotation(id, due.plusSeconds(1))).isEmpty(),
          "a claim skips a key whose row another transaction holds");
      CompletableFuture<Long> waiter = CompletableFuture.supplyAsync(
          () -> tx(() -> catalogue.lockKey(kn).orElseThrow().id), THREADS);
      assertThrows(TimeoutException.class, () -> waiter.get(700, TimeUnit.MILLISECONDS),
          "a second lockKey waits while the row is held");
      release.countDown();
      holder.get(30, TimeUnit.SECONDS);
      assertEquals(id, waiter.get(30, TimeUnit.SECONDS), "and gets the key once the holder is done");
    } finally {
      release.countDown();
    }

    Optional<KeyEntity> claimed = tx(() -> catalogue.claimDueForRotation(id, due.plusSeconds(1)));
    assertEquals(id, claimed.orElseThrow().id);
    assertEquals(due, claimed.get().nextRotationTime);
    assertTrue(tx(() -> catalogue.claimDueForRotation(id, due.minusSeconds(1))).isEmpty(), "not due yet");
    assertTrue(tx(() -> catalogue.lockKey(new KeyName("cat-lock", "missing"))).isEmpty());
  }

  @Test
  void claimDueForDestruction_locksDueVersionsOldestFirst_skipsHeldOnes_andReloadReadsTheDatabase()
      throws Exception {
    KeyName kn = new KeyName("cat-destroy", "k");
    long id = createKey(kn, null).id;
    long[] ids = tx(() -> {
      KeyEntity k = catalogue.lockKey(kn).orElseThrow();
      KeyVersionEntity v2 = catalogue.insertNextVersion(k, newVersion(new byte[] {2}));
      KeyVersionEntity v3 = catalogue.insertNextVersion(k, newVersion(new byte[] {3}));
      v2.state = KeyVersionState.DESTROY_SCHEDULED;
      v2.destroyTime = PAST.plusSeconds(10);
      v3.state = KeyVersionState.DESTROY_SCHEDULED;
      v3.destroyTime = PAST.plusSeconds(5);
      catalogue.flush();
      return new long[] {v2.id, v3.id};
    });
    long v2 = ids[0];
    long v3 = ids[1];
    assertEquals(List.of(v3, v2), tx(() -> catalogue.claimDueForDestruction(PAST.plusSeconds(20), 10)));
    assertEquals(List.of(v3), tx(() -> catalogue.claimDueForDestruction(PAST.plusSeconds(7), 10)));
    assertEquals(List.of(v3), tx(() -> catalogue.claimDueForDestruction(PAST.plusSeconds(20), 1)));
    assertEquals(List.of(), tx(() -> catalogue.claimDueForDestruction(PAST.plusSeconds(4), 10)));

    CountDownLatch locked = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<List<Long>> holder = CompletableFuture.supplyAsync(() -> tx(() -> {
      List<Long> mine = catalogue.claimDueForDestruction(PAST.plusSeconds(20), 1);
      locked.countDown();
      await(release);
      return mine;
    }), THREADS);
    try {
      assertTrue(locked.await(30, TimeUnit.SECONDS), "the holder claimed");
      assertEquals(List.of(v2), tx(() -> catalogue.claimDueForDestruction(PAST.plusSeconds(20), 10)),
          "another transaction gets only what the holder did not claim");
    } finally {
      release.countDown();
    }
    assertEquals(List.of(v3), holder.get(30, TimeUnit.SECONDS));

    // reloadVersion re-reads a row this transaction already read, after another one changed it
    Instant moved = PAST.plusSeconds(1);
    Instant seen = tx(() -> {
      KeyVersionEntity stale = catalogue.findVersion(id, 2).orElseThrow();
      assertEquals(PAST.plusSeconds(10), stale.destroyTime);
      CompletableFuture.runAsync(() -> tx(() -> {
        catalogue.findVersion(id, 2).orElseThrow().destroyTime = moved;
        return null;
      }), THREADS).join();
      KeyVersionEntity fresh = catalogue.reloadVersion(v2);
      assertSame(stale, fresh, "the managed instance, refreshed");
      return fresh.destroyTime;
    });
    assertEquals(moved, seen);
  }

  // ---------------------------------------------------------------------------------------------
  // startup check

  @Test
  void countVersionsHoldingMaterial_countsVersionsWithABlob() {
    long before = catalogue.countVersionsHoldingMaterial().orElseThrow();
    KeyName kn = new KeyName("cat-count", "k");
    long id = createKey(kn, null).id;
    tx(() -> catalogue.insertNextVersion(catalogue.lockKey(kn).orElseThrow(), newVersion(new byte[] {2})));
    assertEquals(before + 2, catalogue.countVersionsHoldingMaterial().orElseThrow());
    tx(() -> {
      KeyVersionEntity v = catalogue.findVersion(id, 1).orElseThrow();
      v.state = KeyVersionState.DESTROYED;
      v.keyBlob = null;
      return null;
    });
    assertEquals(before + 1, catalogue.countVersionsHoldingMaterial().orElseThrow(),
        "a destroyed version's tombstone holds no material");
  }

  @Test
  void countVersionsHoldingMaterial_countsActiveImportJobsToo() throws Exception {
    long before = catalogue.countVersionsHoldingMaterial().orElseThrow();
    try (java.sql.Connection c = db.getConnection(); var st = c.createStatement()) {
      // an ACTIVE job's wrapping key blob depends on the root seed like a key version's
      st.executeUpdate("INSERT INTO import_job (id, namespace, job_id, method, protection_level, state, backend_id,"
          + " wrapping_key_blob, public_key, lifetime_seconds, create_time, generate_time, expire_time, row_version)"
          + " VALUES (nextval('import_job_seq'), 'cat-count', 'job', 'RSA_OAEP_3072_SHA256_AES_256', 'SOFTWARE',"
          + " 'ACTIVE', 'software', '\\x01', '\\x02', 3600, now(), now(), now() + interval '1 hour', 0)");
      assertEquals(before + 1, catalogue.countVersionsHoldingMaterial().orElseThrow());
      st.executeUpdate("UPDATE import_job SET state = 'EXPIRED', wrapping_key_blob = NULL WHERE job_id = 'job'"
          + " AND namespace = 'cat-count'");
    }
    assertEquals(before, catalogue.countVersionsHoldingMaterial().orElseThrow(), "an expired job holds nothing");
  }

  // ---------------------------------------------------------------------------------------------

  private <T> T tx(Supplier<T> work) {
    return QuarkusTransaction.requiringNew().call(work::get);
  }

  private KeyEntity createKey(KeyName kn, Map<String, String> labels) {
    return createKey(kn, labels, null);
  }

  /** A committed key with version 1, due for rotation at {@code nextRotation} if not null. */
  private KeyEntity createKey(KeyName kn, Map<String, String> labels, Instant nextRotation) {
    return tx(() -> {
      KeyEntity k = newKey(kn, labels == null ? Map.of() : labels, nextRotation);
      catalogue.insertKey(k, newVersion(new byte[] {1}));
      catalogue.flush();
      return k;
    });
  }

  private static KeyEntity newKey(KeyName kn, Map<String, String> labels, Instant nextRotation) {
    Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);
    KeyEntity k = new KeyEntity();
    k.namespace = kn.namespace();
    k.name = kn.name();
    k.purpose = KeyPurpose.ENCRYPT_DECRYPT;
    k.algorithm = KeyPurpose.ENCRYPT_DECRYPT.defaultAlgorithm();
    k.protectionLevel = ProtectionLevel.SOFTWARE;
    k.labels = new HashMap<>(labels);
    k.createTime = now;
    k.updateTime = now;
    if (nextRotation != null) {
      k.rotationPeriodSeconds = 3600L;
      k.nextRotationTime = nextRotation;
    }
    return k;
  }

  private static KeyVersionEntity newVersion(byte[] blob) {
    KeyVersionEntity v = new KeyVersionEntity();
    v.state = KeyVersionState.ENABLED;
    v.algorithm = KeyPurpose.ENCRYPT_DECRYPT.defaultAlgorithm();
    v.protectionLevel = ProtectionLevel.SOFTWARE;
    v.backendId = "test";
    v.keyBlob = blob;
    v.createTime = Instant.now().truncatedTo(ChronoUnit.MICROS);
    return v;
  }

  private static List<String> names(List<KeyAndPrimary> page) {
    return page.stream().map(p -> p.key().fullName()).toList();
  }

  private static List<Integer> numbers(List<KeyVersionEntity> versions) {
    return versions.stream().map(v -> v.number).toList();
  }

  private static void await(CountDownLatch latch) {
    try {
      if (!latch.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("never released");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}

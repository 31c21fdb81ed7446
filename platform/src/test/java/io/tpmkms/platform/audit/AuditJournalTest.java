package io.tpmkms.platform.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The journal on a real file system: order, durability boundary, torn tails, cursor, segments, bounds. */
class AuditJournalTest {
  private static final long SEGMENT = AuditJournal.MAX_RECORD + AuditJournal.HEADER; // the smallest allowed
  @TempDir Path dir;

  @Test
  void appendedRecords_readBackInOrder_fromConcurrentWriters() throws Exception {
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      List<CompletableFuture<Void>> done = new ArrayList<>();
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        int id = t;
        Thread th = new Thread(() -> {
          for (int i = 0; i < 500; i++) {
            CompletableFuture<Void> f = j.append(payload("t" + id + "-" + i));
            synchronized (done) {
              done.add(f);
            }
          }
        });
        threads.add(th);
        th.start();
      }
      for (Thread th : threads) th.join();
      for (CompletableFuture<Void> f : done) f.get(10, TimeUnit.SECONDS);
      List<String> read = readAll(j);
      assertEquals(2000, read.size());
      for (int t = 0; t < 4; t++) {
        String prefix = "t" + t + "-";
        List<String> mine = read.stream().filter(s -> s.startsWith(prefix)).toList();
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 500; i++) expected.add(prefix + i);
        assertEquals(expected, mine, "each writer's records in the order it appended them");
      }
      assertEquals(read, strings(AuditJournal.pending(dir)), "the offline reader sees the same records");
    }
  }

  /**
   * Events that name an executor (the event loop of their call) complete on it, one task per executor
   * and sync, after they are durable; an executor that refuses the task does not leave its events hanging.
   */
  @Test
  void completeOn_eachExecutorGetsOneTaskPerSync_refusingExecutorFallsBack() throws Exception {
    java.util.concurrent.ExecutorService a = java.util.concurrent.Executors.newSingleThreadExecutor(
        r -> new Thread(r, "loop-a"));
    java.util.concurrent.ExecutorService b = java.util.concurrent.Executors.newSingleThreadExecutor(
        r -> new Thread(r, "loop-b"));
    java.util.concurrent.atomic.AtomicInteger tasksA = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger tasksB = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.Executor countingA = r -> {
      tasksA.incrementAndGet();
      a.execute(r);
    };
    java.util.concurrent.Executor countingB = r -> {
      tasksB.incrementAndGet();
      b.execute(r);
    };
    java.util.concurrent.Executor refusing = r -> {
      throw new java.util.concurrent.RejectedExecutionException("shutting down");
    };
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ofMillis(2))) {
      long syncsBefore = j.syncs();
      List<CompletableFuture<String>> where = new ArrayList<>();
      for (int i = 0; i < 300; i++) {
        java.util.concurrent.Executor e = i % 3 == 0 ? countingA : i % 3 == 1 ? countingB : refusing;
        CompletableFuture<Void> f = j.append(payload("e" + i), e);
        where.add(f.thenApply(v -> {
          assertTrue(j.syncs() > syncsBefore, "completed only after a sync");
          return Thread.currentThread().getName();
        }));
      }
      for (int i = 0; i < 300; i++) {
        String thread = where.get(i).get(10, TimeUnit.SECONDS);
        String expected = i % 3 == 0 ? "loop-a" : i % 3 == 1 ? "loop-b" : "audit-journal-done";
        assertEquals(expected, thread, "event " + i);
      }
      long syncs = j.syncs() - syncsBefore;
      assertTrue(syncs >= 1);
      assertTrue(tasksA.get() <= syncs && tasksB.get() <= syncs,
          "one task per executor and sync: " + tasksA + "/" + tasksB + " tasks for " + syncs + " syncs");
      assertEquals(300, readAll(j).size());
    } finally {
      a.shutdownNow();
      b.shutdownNow();
    }
  }

  /** The forwarder reads and acknowledges while callers append: every record arrives once, in order. */
  @Test
  void readingWhileWriting_deliversEveryRecordOnce() throws Exception {
    int total = 30_000;
    try (AuditJournal j = AuditJournal.open(dir, SEGMENT, 1L << 30, java.time.Duration.ZERO)) {
      Thread writer = new Thread(() -> {
        List<CompletableFuture<Void>> window = new ArrayList<>();
        for (int i = 0; i < total; i++) {
          window.add(j.append(payload("record-" + i + "-" + "y".repeat(i % 200))));
          if (window.size() == 64) {
            window.forEach(CompletableFuture::join);
            window.clear();
          }
        }
        window.forEach(CompletableFuture::join);
      });
      writer.start();
      List<String> got = new ArrayList<>();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (got.size() < total && System.nanoTime() < deadline) {
        AuditJournal.Batch b = j.read(j.acknowledged(), 1000, 1 << 20);
        got.addAll(strings(b.payloads()));
        j.acknowledge(b.next());
      }
      writer.join();
      assertEquals(total, got.size());
      for (int i = 0; i < total; i++) assertTrue(got.get(i).startsWith("record-" + i + "-"), got.get(i));
    }
  }

  @Test
  void tornTail_isCut_atOpen_andWritingGoesOn() throws Exception {
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      for (int i = 0; i < 3; i++) j.append(payload("r" + i)).get(10, TimeUnit.SECONDS);
    }
    Path segment = segments().get(0);
    long whole = 3 * (AuditJournal.HEADER + 2);
    assertEquals(1 << 20, Files.size(segment), "zeros written ahead of the records, up to the segment size");
    // a crash in the middle of a write: a header announcing 100 bytes, and only 10 of them
    byte[] torn = new byte[AuditJournal.HEADER + 10];
    torn[3] = 100;
    torn[AuditJournal.HEADER] = 'g';
    try (var ch = java.nio.channels.FileChannel.open(segment, StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(torn), whole);
    }
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      assertEquals(whole, Files.size(segment), "the torn record is cut");
      assertEquals(List.of("r0", "r1", "r2"), readAll(j));
      j.append(payload("r3")).get(10, TimeUnit.SECONDS);
      assertEquals(List.of("r0", "r1", "r2", "r3"), readAll(j));
    }
  }

  @Test
  void damagedLastRecord_isCut_nothingAfterItIsRead() throws Exception {
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      for (int i = 0; i < 3; i++) j.append(payload("r" + i)).get(10, TimeUnit.SECONDS);
    }
    Path segment = segments().get(0);
    byte[] bytes = Files.readAllBytes(segment);
    bytes[3 * (AuditJournal.HEADER + 2) - 1] ^= 1; // the last record's payload no longer matches its CRC
    Files.write(segment, bytes);
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      assertEquals(List.of("r0", "r1"), readAll(j));
    }
  }

  @Test
  void acknowledge_survivesReopen_andDropsWholeSegments() throws Exception {
    byte[] big = new byte[8000];
    try (AuditJournal j = AuditJournal.open(dir, SEGMENT, 1L << 30, java.time.Duration.ZERO)) {
      for (int i = 0; i < 40; i++) {
        byte[] p = big.clone();
        p[0] = (byte) i;
        j.append(p).get(10, TimeUnit.SECONDS);
      }
      assertTrue(segments().size() >= 4, "rolled into " + segments().size() + " segments");
      AuditJournal.Batch first = j.read(j.acknowledged(), 25, 1 << 20);
      assertEquals(25, first.payloads().size());
      int before = segments().size();
      j.acknowledge(first.next());
      assertTrue(segments().size() < before, "segments wholly acknowledged are deleted");
    }
    try (AuditJournal j = AuditJournal.open(dir, SEGMENT, 1L << 30, java.time.Duration.ZERO)) {
      List<byte[]> rest = new ArrayList<>();
      for (AuditJournal.Batch b; !(b = j.read(j.acknowledged(), 100, 1 << 20)).payloads().isEmpty(); ) {
        rest.addAll(b.payloads());
        j.acknowledge(b.next());
      }
      assertEquals(15, rest.size(), "only what was not acknowledged comes back");
      assertEquals(25, rest.get(0)[0]);
      assertEquals(1, segments().size(), "everything acknowledged: one (tail) segment left");
      assertEquals(0, AuditJournal.pending(dir).size(), "nothing pending");
    }
  }

  /** A cursor write torn by a crash leaves the other slot: the journal re-sends from there, loses nothing. */
  @Test
  void tornCursorSlot_fallsBackToThePreviousOne() throws Exception {
    long first;
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      for (int i = 0; i < 4; i++) j.append(payload("c" + i)).get(10, TimeUnit.SECONDS);
      AuditJournal.Batch two = j.read(0, 2, 1 << 20);
      first = two.next();
      j.acknowledge(first);
      j.acknowledge(j.read(first, 1, 1 << 20).next());
    }
    byte[] cursor = Files.readAllBytes(dir.resolve("cursor"));
    cursor[8] ^= 0x40; // slot 0 holds generation 2 (the newer); damage its offset
    Files.write(dir.resolve("cursor"), cursor);
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      assertEquals(first, j.acknowledged(), "the older slot counts");
      assertEquals(List.of("c2", "c3"), readAll(j), "c2 is sent again, nothing is skipped");
    }
  }

  @Test
  void secondOpen_ofTheSameDirectory_isRefused() throws Exception {
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      IOException e = assertThrows(IOException.class, () -> AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO));
      assertTrue(e.getMessage().contains("in use by another process"), e.getMessage());
    }
  }

  @Test
  void fullBacklog_refuses_untilAcknowledged() throws Exception {
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1000, java.time.Duration.ZERO)) {
      int accepted = 0;
      ExecutionException refused = null;
      while (refused == null && accepted < 1000) {
        try {
          j.append(payload("x".repeat(100))).get(10, TimeUnit.SECONDS);
          accepted++;
        } catch (ExecutionException e) {
          refused = e;
        }
      }
      assertTrue(refused != null && refused.getCause() instanceof AuditUnavailableException
          && refused.getCause().getCause() instanceof AuditJournal.JournalException, "refused: " + refused);
      assertTrue(accepted >= 9 && accepted <= 10, "accepted " + accepted + " records of 108 bytes under a 1000-byte bound");
      AuditJournal.Batch all = j.read(j.acknowledged(), 1000, 1 << 20);
      assertEquals(accepted, all.payloads().size());
      j.acknowledge(all.next());
      j.append(payload("after")).get(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void cursorPastTheEnd_refusesToOpen() throws Exception {
    try (AuditJournal j = AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO)) {
      j.append(payload("a")).get(10, TimeUnit.SECONDS);
      j.acknowledge(j.durableEnd());
    }
    // someone deleted the segment files: the cursor now points past the journal's end
    for (Path p : segments()) Files.delete(p);
    Files.write(dir.resolve("segment-00000000000000000000.log"), new byte[0]);
    IOException e = assertThrows(IOException.class, () -> AuditJournal.open(dir, 1 << 20, 1 << 30, java.time.Duration.ZERO));
    assertTrue(e.getMessage().contains("past its last record"), e.getMessage());
  }

  private List<Path> segments() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().startsWith("segment-")).sorted().toList();
    }
  }

  private static List<String> readAll(AuditJournal j) throws IOException {
    List<String> out = new ArrayList<>();
    long from = j.acknowledged();
    for (AuditJournal.Batch b; !(b = j.read(from, 300, 1 << 16)).payloads().isEmpty(); from = b.next()) {
      out.addAll(strings(b.payloads()));
    }
    return out;
  }

  private static List<String> strings(List<byte[]> payloads) {
    return payloads.stream().map(p -> new String(p, StandardCharsets.UTF_8)).toList();
  }

  private static byte[] payload(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}

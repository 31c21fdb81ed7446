package io.tpmkms.platform.audit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.jboss.logging.Logger;

/**
 * The local audit journal of one service process: an append-only log of
 * serialized audit events in segment files, made durable by group commit
 * (one {@code fdatasync} for every event queued while the previous one ran)
 * and shipped to the audit service by {@link AuditForwarder}, which moves a
 * durable cursor past what the audit service acknowledged (ADR 0016).
 *
 * <p>Layout of {@code dir}:
 * <ul>
 *   <li>{@code segment-<20-digit start offset>.log}: records back to back, each
 *       {@code u32 length | u32 CRC-32C of the payload | payload} (big-endian),
 *       the payload a serialized {@code tpmkms.audit.v1.AuditEvent}. Offsets
 *       are logical: a segment's name is the offset of its first byte.
 *   <li>{@code cursor}: the offset up to which the audit service acknowledged
 *       every record, in two slots of {@code u64 generation | u64 offset |
 *       u32 CRC-32C of those 16 bytes} written in turn, so that a torn write
 *       leaves the other slot whole; the valid slot of the higher generation
 *       counts. It is written after every acknowledgement but synced only
 *       before segments are deleted: after a crash it may lag, and what lies
 *       between is sent again (the audit service drops it by event id).
 *   <li>{@code journal.lock}: held (an OS file lock) by the process that owns the
 *       journal; a second process on the same directory refuses to start.
 * </ul>
 *
 * <p>Durability: {@link #append} completes only after the record and every
 * record before it are on disk. A crash can leave a torn record at the end of
 * the last segment — never acknowledged, because its fdatasync had not
 * returned; opening the journal finds the last whole record by length and
 * CRC and cuts the rest. Records between the cursor and the end are sent
 * again after a restart; the audit service drops them by event id.
 *
 * <p>Fail closed: a write or sync that fails fails every call of its batch;
 * if the journal cannot be brought back to its last durable end it refuses
 * everything until the process restarts. A backlog (written, not yet
 * acknowledged) above {@code maxBacklogBytes} refuses new events too.
 *
 * <p>Threading: {@link #append} from any thread (never blocks); one writer
 * thread; {@link #read} and {@link #acknowledge} from one forwarder thread.
 * Futures complete on a separate thread, so answering a batch's calls runs
 * while the next batch is written.
 */
public final class AuditJournal implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(AuditJournal.class);
  static final int HEADER = 8;
  /** Larger than any event the services produce (every text field is clipped to 256 characters). */
  static final int MAX_RECORD = 64 * 1024;
  private static final int MAX_BATCH = 4096;
  /** Events per sync from which the writer waits for the commit interval before the next sync. */
  static final int GATHER_ABOVE = 32;
  /** While gathering: this long without a new event ends the wait, doubling while events come (see {@link #gather}). */
  static final long QUIET_NANOS = 200_000;
  private static final String SEGMENT_PREFIX = "segment-";
  private static final String SEGMENT_SUFFIX = ".log";
  /**
   * Zeros written ahead of the records, so that a record's {@code fdatasync} flushes data blocks
   * only: appending to the end of a file also changes its size, and syncing that metadata cost
   * about three times the CPU per sync (160 vs 55 µs measured here) and several times the latency.
   */
  static final int PREALLOCATE = 4 << 20;

  /** Why a record could not be journaled; the call is refused (fail closed). */
  public static final class JournalException extends IOException {
    JournalException(String message) { super(message); }
    JournalException(String message, Throwable cause) { super(message, cause); }
  }

  /** Records read from the journal, and the offset just after the last of them. */
  public record Batch(List<byte[]> payloads, long next) {}

  /** One event waiting for its sync; {@code completeOn} null: completed by the completion thread. */
  private record Pending(byte[] payload, CompletableFuture<Void> done, java.util.concurrent.Executor completeOn) {}

  private final Path dir;
  private final long segmentBytes;
  private final long maxBacklogBytes;
  private final long commitIntervalNanos;
  private final FileChannel lockChannel;
  private final FileLock lock;
  /** start offset -> segment file; the writer adds, the forwarder removes (guarded by itself). */
  private final TreeMap<Long, Path> segments = new TreeMap<>();
  private final BlockingQueue<Pending> queue = new ArrayBlockingQueue<>(100_000);
  private final ExecutorService completer;
  private final Thread writer;

  // writer thread only
  private FileChannel tail;
  private long tailStart;
  private long end;
  /** Bytes of the tail file, records and the zeros after them. */
  private long allocated;
  private long lastSyncStart;
  private int lastBatch;
  private ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.BIG_ENDIAN);
  private final CRC32C writeCrc = new CRC32C();

  private volatile long durableEnd;
  private volatile long acknowledged;
  /** Written by the writer thread only; read by anyone ({@link #syncs}, {@link #events}). */
  private volatile long syncs;
  private volatile long events;
  private volatile boolean broken;
  /** Only to log the start of a full backlog once, not once per refused call. */
  private volatile boolean backlogFull;
  private volatile boolean running = true;

  // forwarder thread only
  private FileChannel cursorFile;
  private long cursorGeneration;
  private FileChannel readChannel;
  private long readStart = -1;
  private final ByteBuffer readBuffer = ByteBuffer.allocate(1 << 20).order(ByteOrder.BIG_ENDIAN);
  private final CRC32C readCrc = new CRC32C();

  private AuditJournal(Path dir, long segmentBytes, long maxBacklogBytes, long commitIntervalNanos) throws IOException {
    this.dir = Files.createDirectories(dir);
    this.segmentBytes = segmentBytes;
    this.maxBacklogBytes = maxBacklogBytes;
    this.commitIntervalNanos = commitIntervalNanos;
    this.lockChannel = FileChannel.open(dir.resolve("journal.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    FileLock l;
    try {
      l = lockChannel.tryLock();
    } catch (java.nio.channels.OverlappingFileLockException e) {
      l = null; // held by this very process
    } catch (IOException e) {
      lockChannel.close();
      throw e;
    }
    if (l == null) {
      lockChannel.close();
      throw new IOException("the audit journal " + dir + " is in use by another process;"
          + " every service process needs a journal directory of its own");
    }
    this.lock = l;
    try {
      recover();
    } catch (IOException | RuntimeException e) {
      closeQuietly();
      throw e;
    }
    this.completer = Executors.newSingleThreadExecutor(r -> daemon(r, "audit-journal-done"));
    this.writer = daemon(this::writeLoop, "audit-journal-writer");
    writer.start();
  }

  /**
   * Opens (or creates) the journal in {@code dir}: takes its lock, finds the
   * last whole record, cuts a torn tail, drops segments already acknowledged.
   *
   * @param commitInterval the least time between the starts of two syncs
   *     under load: a sync costs CPU whatever it carries, so once a sync
   *     carried {@value #GATHER_ABOVE} events or more the writer gathers what
   *     arrives within this time into the next one, unless events stop
   *     coming before (see {@code gather}); below that, and when the writer is
   *     idle, a call is synced at once (zero: never gather)
   */
  public static AuditJournal open(Path dir, long segmentBytes, long maxBacklogBytes, java.time.Duration commitInterval)
      throws IOException {
    if (segmentBytes < MAX_RECORD + HEADER) throw new IllegalArgumentException("segment size too small: " + segmentBytes);
    return new AuditJournal(dir, segmentBytes, maxBacklogBytes, commitInterval.toNanos());
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  private void recover() throws IOException {
    acknowledged = readCursor(dir);
    segments.putAll(listSegments(dir));
    if (segments.isEmpty()) {
      newSegment(acknowledged);
    } else {
      Map.Entry<Long, Path> last = segments.lastEntry();
      tailStart = last.getKey();
      tail = FileChannel.open(last.getValue(), StandardOpenOption.READ, StandardOpenOption.WRITE);
      long valid = validLength(tail);
      if (valid < tail.size()) {
        // after the last whole record: zeros written ahead (a clean stop), or a torn record (a crash)
        if (!zeroHeaderAt(tail, valid)) {
          LOG.warnf("audit journal %s: cut a torn record at offset %d (never acknowledged)",
              last.getValue().getFileName(), valid);
        }
        tail.truncate(valid);
        tail.force(true);
      }
      end = tailStart + valid;
      allocated = valid;
    }
    if (acknowledged > end) {
      throw new IOException("the audit journal cursor (" + acknowledged + ") is past its last record (" + end
          + "): segments are missing from " + dir);
    }
    if (acknowledged < segments.firstKey()) {
      throw new IOException("the audit journal's first segment starts at " + segments.firstKey()
          + " but events from " + acknowledged + " were never acknowledged: segments are missing from " + dir);
    }
    durableEnd = end;
    dropAcknowledgedSegments();
    LOG.infof("audit journal %s: %d bytes not yet forwarded", dir, end - acknowledged);
  }

  /** Length of the prefix of whole, checksummed records. */
  private static long validLength(FileChannel ch) throws IOException {
    long size = ch.size();
    long pos = 0;
    ByteBuffer header = ByteBuffer.allocate(HEADER).order(ByteOrder.BIG_ENDIAN);
    CRC32C c = new CRC32C();
    while (pos + HEADER <= size) {
      header.clear();
      readFully(ch, header, pos);
      int len = header.getInt(0);
      int sum = header.getInt(4);
      if (len <= 0 || len > MAX_RECORD || pos + HEADER + len > size) break;
      ByteBuffer payload = ByteBuffer.allocate(len);
      readFully(ch, payload, pos + HEADER);
      c.reset();
      c.update(payload.array(), 0, len);
      if ((int) c.getValue() != sum) break;
      pos += HEADER + len;
    }
    return pos;
  }

  /** Whether the record header at {@code pos} is all zeros (space written ahead) or cut off by the file's end. */
  private static boolean zeroHeaderAt(FileChannel ch, long pos) throws IOException {
    if (pos + HEADER > ch.size()) return pos == ch.size();
    ByteBuffer header = ByteBuffer.allocate(HEADER);
    readFully(ch, header, pos);
    return header.getLong(0) == 0;
  }

  private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
    while (b.hasRemaining()) {
      int n = ch.read(b, pos);
      if (n < 0) throw new IOException("unexpected end of file");
      pos += n;
    }
  }

  private static TreeMap<Long, Path> listSegments(Path dir) throws IOException {
    TreeMap<Long, Path> found = new TreeMap<>();
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, SEGMENT_PREFIX + "*" + SEGMENT_SUFFIX)) {
      for (Path p : s) {
        String n = p.getFileName().toString();
        found.put(Long.parseLong(n.substring(SEGMENT_PREFIX.length(), n.length() - SEGMENT_SUFFIX.length())), p);
      }
    }
    return found;
  }

  private static final int CURSOR_SLOT = 20;

  /** The cursor's offset: the valid slot of the higher generation (0 without a cursor file). */
  private static long readCursor(Path dir) throws IOException {
    return readCursorSlot(dir)[1];
  }

  /** {generation, offset} of the cursor's current slot. */
  private static long[] readCursorSlot(Path dir) throws IOException {
    Path cursor = dir.resolve("cursor");
    if (!Files.exists(cursor)) return new long[] {0, 0};
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(cursor)).order(ByteOrder.BIG_ENDIAN);
    long[] best = null;
    CRC32C c = new CRC32C();
    for (int slot = 0; slot < 2 && (slot + 1) * CURSOR_SLOT <= b.capacity(); slot++) {
      int at = slot * CURSOR_SLOT;
      c.reset();
      c.update(b.array(), at, 16);
      if ((int) c.getValue() != b.getInt(at + 16)) continue;
      long generation = b.getLong(at);
      if (best == null || generation > best[0]) best = new long[] {generation, b.getLong(at + 8)};
    }
    if (best == null) throw new IOException("the audit journal cursor " + cursor + " is damaged (no valid slot)");
    return best;
  }

  private void newSegment(long start) throws IOException {
    if (tail != null) {
      tail.force(false);
      tail.close();
    }
    Path p = dir.resolve(String.format("%s%020d%s", SEGMENT_PREFIX, start, SEGMENT_SUFFIX));
    tail = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
    tailStart = start;
    end = start;
    allocated = 0;
    syncDirectory();
    synchronized (segments) {
      segments.put(start, p);
    }
  }

  /** Makes a created, renamed or deleted directory entry durable. */
  private void syncDirectory() throws IOException {
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    }
  }

  /**
   * Queues one serialized event; completes once it is durable, or fails with
   * an {@link AuditUnavailableException} whose cause, a {@link JournalException},
   * says why (the caller refuses the call: fail closed).
   */
  public CompletableFuture<Void> append(byte[] payload) {
    return append(payload, null);
  }

  /**
   * As {@link #append(byte[])}; once durable, the future is completed on
   * {@code completeOn} (when not null): the events of one sync that name the
   * same executor are completed there in one task. The gRPC event loop that
   * serves a call passes itself, so that the call is answered on its own
   * thread with one hand-over per sync and event loop instead of one per call.
   */
  public CompletableFuture<Void> append(byte[] payload, java.util.concurrent.Executor completeOn) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    if (broken || !running) {
      done.completeExceptionally(refused("the audit journal is not writable"));
    } else if (payload.length == 0 || payload.length > MAX_RECORD) {
      done.completeExceptionally(refused("an audit event of " + payload.length + " bytes"));
    } else if (durableEnd - acknowledged > maxBacklogBytes) {
      if (!backlogFull) LOG.errorf("the audit backlog is full (%d bytes not yet accepted by the audit service):"
          + " calls are refused until the forwarder catches up", durableEnd - acknowledged);
      backlogFull = true;
      done.completeExceptionally(refused("the audit backlog is full (" + (durableEnd - acknowledged)
          + " bytes not yet accepted by the audit service)"));
    } else if (!queue.offer(new Pending(payload, done, completeOn))) {
      done.completeExceptionally(refused("the audit journal queue is full"));
    }
    return done;
  }

  private static AuditUnavailableException refused(String why) {
    return new AuditUnavailableException(new JournalException(why));
  }

  private void writeLoop() {
    List<Pending> batch = new ArrayList<>(MAX_BATCH);
    while (running || !queue.isEmpty()) {
      try {
        Pending first = queue.poll(100, TimeUnit.MILLISECONDS);
        if (first == null) continue;
        // gather only under load (the last sync carried many events): at low concurrency every
        // caller waits for the sync anyway, and waiting longer would only slow it down
        if (lastBatch >= GATHER_ABOVE) gather(lastSyncStart + commitIntervalNanos);
        batch.add(first);
        queue.drainTo(batch, MAX_BATCH - 1);
        lastSyncStart = System.nanoTime();
        lastBatch = batch.size();
        write(batch);
        completeDurable(batch);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      } catch (IOException | RuntimeException e) {
        LOG.errorf(e, "cannot write %d audit events to the journal; their calls are refused", batch.size());
        AuditUnavailableException failure = new AuditUnavailableException(
            new JournalException("the audit journal could not be written", e));
        List<Pending> failed = List.copyOf(batch);
        completer.execute(() -> failed.forEach(p -> p.done().completeExceptionally(failure)));
        restoreDurableEnd();
      } finally {
        batch.clear();
      }
    }
    for (Pending p; (p = queue.poll()) != null; ) {
      p.done().completeExceptionally(refused("the service is shutting down"));
    }
  }

  /**
   * Waits for more events until {@code deadline}, but no longer than events
   * keep coming: once a quiet period passes without a new one, the callers
   * that will come soon are all in (a burst of answered callers calling again,
   * say) and waiting longer would only delay them. The quiet period starts at
   * {@link #QUIET_NANOS} and doubles each time events did arrive, so that a
   * steady stream costs the writer a few wake-ups per sync, not one per
   * period (measured with JournalLoad at 30,000 steady events/s: writer CPU
   * per event 2.3 µs waiting in one piece, 3.6 with a fixed 200 µs period,
   * 2.8-3.0 doubling; answered bursts of 32 callers: 15,000 events/s waiting
   * in one piece, 35,000 fixed, 29,000 doubling).
   */
  private void gather(long deadline) {
    int seen = queue.size();
    long quiet = QUIET_NANOS;
    for (long now = System.nanoTime(); now < deadline; now = System.nanoTime()) {
      java.util.concurrent.locks.LockSupport.parkNanos(Math.min(deadline - now, quiet));
      int n = queue.size();
      if (n == seen) return;
      seen = n;
      quiet *= 2;
    }
  }

  /**
   * Completes a synced batch: the events that name an executor, one task per
   * executor; the rest on the completion thread. Never on the writer, which
   * goes on with the next sync.
   */
  private void completeDurable(List<Pending> batch) {
    List<Pending> here = null;
    java.util.IdentityHashMap<java.util.concurrent.Executor, List<Pending>> there = null;
    for (Pending p : batch) {
      if (p.completeOn() == null) {
        if (here == null) here = new ArrayList<>();
        here.add(p);
      } else {
        if (there == null) there = new java.util.IdentityHashMap<>();
        there.computeIfAbsent(p.completeOn(), k -> new ArrayList<>()).add(p);
      }
    }
    if (there != null) {
      for (var e : there.entrySet()) {
        List<Pending> group = e.getValue();
        try {
          e.getKey().execute(() -> group.forEach(p -> p.done().complete(null)));
        } catch (java.util.concurrent.RejectedExecutionException refused) {
          if (here == null) here = new ArrayList<>();
          here.addAll(group); // that executor is shutting down: complete them here
        }
      }
    }
    if (here != null) {
      List<Pending> rest = here;
      completer.execute(() -> rest.forEach(p -> p.done().complete(null)));
    }
  }

  private void write(List<Pending> batch) throws IOException {
    int bytes = 0;
    for (Pending p : batch) bytes += HEADER + p.payload().length;
    if (end > tailStart && end - tailStart + bytes > segmentBytes) newSegment(end);
    if (buffer.capacity() < bytes) buffer = ByteBuffer.allocateDirect(bytes).order(ByteOrder.BIG_ENDIAN);
    buffer.clear();
    for (Pending p : batch) {
      writeCrc.reset();
      writeCrc.update(p.payload());
      buffer.putInt(p.payload().length).putInt((int) writeCrc.getValue()).put(p.payload());
    }
    buffer.flip();
    long at = end - tailStart;
    preallocate(at + bytes);
    while (buffer.hasRemaining()) at += tail.write(buffer, at);
    tail.force(false);
    end += bytes;
    durableEnd = end;
    syncs++;
    events += batch.size();
  }

  /** Makes the tail file at least {@code size} bytes long, in steps of {@link #PREALLOCATE} zeros, durably. */
  private void preallocate(long size) throws IOException {
    if (size <= allocated) return;
    long target = Math.max(size, Math.min(allocated + PREALLOCATE, segmentBytes));
    ByteBuffer zeros = ByteBuffer.allocate(64 * 1024);
    for (long at = allocated; at < target; ) {
      zeros.clear().limit((int) Math.min(zeros.capacity(), target - at));
      at += tail.write(zeros, at);
    }
    tail.force(true);
    allocated = target;
  }

  /** After a failed write: cut whatever part of it reached the file, so the journal ends at a whole record. */
  private void restoreDurableEnd() {
    try {
      end = durableEnd;
      if (end < tailStart) throw new IOException("durable end before the tail segment");
      tail.truncate(end - tailStart);
      tail.force(true);
      allocated = end - tailStart;
    } catch (IOException | RuntimeException e) {
      broken = true;
      LOG.errorf(e, "the audit journal %s cannot be repaired; every call is refused until the service restarts", dir);
    }
  }

  /** The offset up to which the audit service has acknowledged every record. */
  public long acknowledged() { return acknowledged; }

  /** Whether new events are accepted (false while the backlog is full: calls are refused). */
  public boolean accepting() { return !backlogFull; }

  /** The offset just after the last durable record. */
  public long durableEnd() { return durableEnd; }

  /**
   * Reads durable records from {@code from} (a record boundary: 0 or an
   * offset {@link Batch#next} returned), at most {@code maxRecords} of them
   * and about {@code maxBytes}. An empty batch: nothing new.
   */
  public Batch read(long from, int maxRecords, int maxBytes) throws IOException {
    long limit = durableEnd;
    List<byte[]> out = new ArrayList<>();
    long pos = from;
    while (pos < limit && out.size() < maxRecords && pos - from < maxBytes) {
      Map.Entry<Long, Path> seg;
      Long nextStart;
      synchronized (segments) {
        seg = segments.floorEntry(pos);
        nextStart = segments.higherKey(pos);
      }
      if (seg == null) throw new IOException("no audit journal segment holds offset " + pos);
      if (readStart != seg.getKey()) {
        if (readChannel != null) readChannel.close();
        readChannel = FileChannel.open(seg.getValue(), StandardOpenOption.READ);
        readStart = seg.getKey();
      }
      long segLimit = nextStart == null ? limit : Math.min(limit, nextStart);
      if (pos >= segLimit) {
        if (nextStart == null) break;
        pos = nextStart;
        continue;
      }
      readBuffer.clear();
      readBuffer.limit((int) Math.min(readBuffer.capacity(), segLimit - pos));
      readFully(readChannel, readBuffer, pos - readStart);
      readBuffer.flip();
      int consumed = 0;
      while (readBuffer.remaining() >= HEADER && out.size() < maxRecords) {
        int len = readBuffer.getInt(consumed);
        int sum = readBuffer.getInt(consumed + 4);
        if (len <= 0 || len > MAX_RECORD) throw new IOException("damaged audit journal record at offset " + (pos + consumed));
        if (readBuffer.remaining() < HEADER + len) break;
        byte[] payload = new byte[len];
        readBuffer.get(consumed + HEADER, payload);
        readCrc.reset();
        readCrc.update(payload);
        if ((int) readCrc.getValue() != sum) {
          throw new IOException("audit journal record at offset " + (pos + consumed) + " fails its checksum");
        }
        out.add(payload);
        consumed += HEADER + len;
        readBuffer.position(consumed);
      }
      if (consumed == 0) throw new IOException("audit journal record at offset " + pos + " is larger than the read buffer");
      pos += consumed;
    }
    return new Batch(out, pos);
  }

  /**
   * Moves the cursor to {@code offset} (everything before it is in the audit
   * service's chain) durably, then deletes the segments wholly before it.
   */
  public void acknowledge(long offset) throws IOException {
    if (offset <= acknowledged) return;
    if (offset > durableEnd) throw new IllegalArgumentException("acknowledging past the durable end");
    if (cursorFile == null) {
      cursorGeneration = readCursorSlot(dir)[0];
      cursorFile = FileChannel.open(dir.resolve("cursor"), StandardOpenOption.CREATE, StandardOpenOption.READ,
          StandardOpenOption.WRITE);
      syncDirectory();
    }
    cursorGeneration++;
    ByteBuffer b = ByteBuffer.allocate(CURSOR_SLOT).order(ByteOrder.BIG_ENDIAN).putLong(cursorGeneration).putLong(offset);
    CRC32C c = new CRC32C();
    c.update(b.array(), 0, 16);
    b.putInt((int) c.getValue()).flip();
    long at = (cursorGeneration % 2) * CURSOR_SLOT;
    while (b.hasRemaining()) at += cursorFile.write(b, at);
    acknowledged = offset;
    if (backlogFull && durableEnd - offset <= maxBacklogBytes) {
      backlogFull = false;
      LOG.info("the audit backlog has room again: calls are accepted");
    }
    dropAcknowledgedSegments();
  }

  private void dropAcknowledgedSegments() throws IOException {
    List<Path> drop = new ArrayList<>();
    boolean any;
    synchronized (segments) {
      any = segments.size() > 1 && segments.higherKey(segments.firstKey()) <= acknowledged;
    }
    if (!any) return;
    // the cursor must not point into a deleted segment after a crash
    if (cursorFile != null) cursorFile.force(false);
    synchronized (segments) {
      while (segments.size() > 1) {
        Map.Entry<Long, Path> first = segments.firstEntry();
        Long next = segments.higherKey(first.getKey());
        if (next > acknowledged) break;
        drop.add(first.getValue());
        segments.remove(first.getKey());
      }
    }
    for (Path p : drop) Files.deleteIfExists(p);
    if (!drop.isEmpty()) syncDirectory();
  }

  /**
   * Every record not yet acknowledged, read from the files of {@code dir}
   * without taking the journal: for tests and diagnostics, while the owning
   * process may still be writing (a record it is writing right now is left out).
   */
  public static List<byte[]> pending(Path dir) {
    try {
      long from = readCursor(dir);
      List<byte[]> out = new ArrayList<>();
      for (Map.Entry<Long, Path> seg : listSegments(dir).entrySet()) {
        try (FileChannel ch = FileChannel.open(seg.getValue(), StandardOpenOption.READ)) {
          long valid = validLength(ch);
          ByteBuffer all = ByteBuffer.allocate((int) valid);
          readFully(ch, all, 0);
          all.flip();
          long pos = seg.getKey();
          while (all.hasRemaining()) {
            int len = all.getInt();
            all.getInt();
            byte[] payload = new byte[len];
            all.get(payload);
            if (pos >= from) out.add(payload);
            pos += HEADER + len;
          }
        }
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Group commits made durable since this process opened the journal. */
  public long syncs() { return syncs; }

  /** Events made durable since this process opened the journal. */
  public long events() { return events; }

  @Override
  public void close() {
    running = false;
    try {
      writer.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    completer.shutdown();
    try {
      completer.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    closeQuietly();
    LOG.infof("audit journal %s closed: %d events made durable in %d group commits since start", dir, events, syncs);
  }

  private void closeQuietly() {
    try {
      if (tail != null) tail.close();
      if (readChannel != null) readChannel.close();
      if (cursorFile != null) {
        cursorFile.force(false);
        cursorFile.close();
      }
      lock.release();
      lockChannel.close();
    } catch (IOException e) {
      LOG.warnf("closing the audit journal %s: %s", dir, e.getMessage());
    }
  }
}

package io.tpmkms.audit.chain;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agroal.api.AgroalDataSource;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.chain.Event;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.audit.verify.ChainVerifier;
import jakarta.inject.Inject;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.jboss.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Measures the writer and the verifier in process, at scale (opt-in:
 * {@code -Daudit.rate.records=1000000}): appends that many events in batches
 * of 1000 from 8 producers, then verifies the whole chain. Also reports the
 * CPU time per appended event of the writer thread and of the PostgreSQL
 * server (from /proc, on Linux): the durable append's cost, apart from the
 * producers that make up the events.
 */
@QuarkusTest
@WithTestResource(value = PostgresResource.class, initArgs = {
    @ResourceArg(name = "durable", value = "true"), @ResourceArg(name = "audit-journal", value = "false")})
@EnabledIfSystemProperty(named = "audit.rate.records", matches = "\\d+")
class WriterRateManualTest {
  private static final Logger LOG = Logger.getLogger(WriterRateManualTest.class);

  @Inject AuditWriter writer;
  @Inject ChainVerifier verifier;
  @Inject AgroalDataSource db;

  @Test
  void appendThenVerify_atScale() throws Exception {
    int total = Integer.getInteger("audit.rate.records");
    int batch = 1000;
    int inFlight = 8;
    long writerThread = Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().equals("audit-writer")).findFirst().orElseThrow().getId();
    long writerCpu0 = ManagementFactory.getThreadMXBean().getThreadCpuTime(writerThread);
    long postgresCpu0 = postgresCpuMicros();
    long start = System.nanoTime();
    List<CompletableFuture<long[]>> window = new ArrayList<>();
    for (int done = 0; done < total; done += batch) {
      List<Event> events = new ArrayList<>(batch);
      for (int i = 0; i < batch; i++) {
        events.add(new Event(UUID.randomUUID().toString(), 1_700_000_000L + done, i, "key-service", "principal-" + (i % 50),
            "127.0.0.1:5555", "tpmkms.key.v1.KeyService/Encrypt", "ns/key-" + (i % 100), 1, 1, "rule admin-all", "OK", "",
            UUID.randomUUID().toString(), new byte[32]));
      }
      window.add(writer.append(events));
      if (window.size() >= inFlight) window.remove(0).get();
    }
    for (CompletableFuture<long[]> f : window) f.get();
    double s = (System.nanoTime() - start) / 1e9;
    double writerCpu = (ManagementFactory.getThreadMXBean().getThreadCpuTime(writerThread) - writerCpu0) / 1e3;
    double postgresCpu = postgresCpuMicros() - postgresCpu0;
    LOG.infof("MEASURED in-process append: %d events in %.2f s = %.0f events/s", total, s, total / s);
    LOG.infof("MEASURED append CPU per event: writer thread %.1f us, PostgreSQL %.1f us", writerCpu / total,
        postgresCpu / total);

    for (int round = 0; round < 2; round++) {
      long v0 = System.nanoTime();
      ChainVerifier.Result r = verifier.verify(0, 0);
      double vs = (System.nanoTime() - v0) / 1e9;
      LOG.infof("MEASURED verify: %d records, %d checkpoints in %.2f s = %.0f records/s", r.recordsChecked(),
          r.checkpointsChecked(), vs, r.recordsChecked() / vs);
      assertTrue(r.valid(), r.problem());
    }
  }

  /**
   * CPU time (user + system, µs) used so far by this test's PostgreSQL: its
   * postmaster (the parent of a backend), the postmaster's live children, and
   * its children that already exited (its cutime + cstime).
   */
  private long postgresCpuMicros() throws Exception {
    long postmaster;
    try (Connection c = db.getConnection(); Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT pg_backend_pid()")) {
      rs.next();
      postmaster = stat(rs.getLong(1))[PPID];
    }
    long[] own = stat(postmaster);
    long ticks = own[UTIME] + own[STIME] + own[CUTIME] + own[CSTIME];
    try (var procs = Files.list(Path.of("/proc"))) {
      for (Path p : (Iterable<Path>) procs::iterator) {
        String name = p.getFileName().toString();
        if (!name.chars().allMatch(Character::isDigit)) continue;
        try {
          long[] child = stat(Long.parseLong(name));
          if (child[PPID] == postmaster) ticks += child[UTIME] + child[STIME];
        } catch (java.io.IOException exited) {
          // gone since the listing: counted in the postmaster's cutime once reaped
        }
      }
    }
    return ticks * 10_000; // USER_HZ is 100 on Linux
  }

  private static final int PPID = 4;
  private static final int UTIME = 14;
  private static final int STIME = 15;
  private static final int CUTIME = 16;
  private static final int CSTIME = 17;

  /** /proc/<pid>/stat's fields by their number in proc(5), up to cstime (the command name may hold spaces). */
  private static long[] stat(long pid) throws java.io.IOException {
    String s = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    String[] f = s.substring(s.lastIndexOf(')') + 2).split(" "); // f[0] is field 3, the state
    long[] out = new long[CSTIME + 1];
    for (int n = PPID; n <= CSTIME; n++) out[n] = Long.parseLong(f[n - 3]);
    return out;
  }
}

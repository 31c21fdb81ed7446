package io.tpmkms.audit;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.chain.Event;
import io.tpmkms.audit.testing.PostgresResource;
import io.tpmkms.audit.verify.ChainVerifier;
import jakarta.inject.Inject;
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
 * of 1000 from 8 producers, then verifies the whole chain.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@EnabledIfSystemProperty(named = "audit.rate.records", matches = "\\d+")
class WriterRateManualTest {
  private static final Logger LOG = Logger.getLogger(WriterRateManualTest.class);

  @Inject AuditWriter writer;
  @Inject ChainVerifier verifier;

  @Test
  void appendThenVerify_atScale() throws Exception {
    int total = Integer.getInteger("audit.rate.records");
    int batch = 1000;
    int inFlight = 8;
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
    LOG.infof("MEASURED in-process append: %d events in %.2f s = %.0f events/s", total, s, total / s);

    for (int round = 0; round < 2; round++) {
      long v0 = System.nanoTime();
      ChainVerifier.Result r = verifier.verify(0, 0);
      double vs = (System.nanoTime() - v0) / 1e9;
      LOG.infof("MEASURED verify: %d records, %d checkpoints in %.2f s = %.0f records/s", r.recordsChecked(),
          r.checkpointsChecked(), vs, r.recordsChecked() / vs);
      assertTrue(r.valid(), r.problem());
    }
  }
}

package io.tpmkms.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client suite in a tiny mode against the packaged key service: every row (one call per item,
 * the client library, batches of 1, 16 and 128) measured without errors, its last ciphertext
 * decrypted, the section written.
 */
class ClientBenchmarkTest {
  @TempDir
  Path tmp;

  @Test
  void tinyRun_everyRowMeasuredWithoutFailures() throws Exception {
    Path jar = Path.of(System.getProperty("tpmkms.bench.service-jar",
        "../key-service/target/quarkus-app/quarkus-run.jar"));
    Assumptions.assumeTrue(Files.isRegularFile(jar), "key service not packaged at " + jar.toAbsolutePath());
    Path doc = tmp.resolve("benchmarks.md");
    Files.writeString(doc, "# Benchmarks\n\nhand-written\n");
    var options = new ClientBenchmark.Options(jar, 1, Duration.ofMillis(300), Duration.ofSeconds(1), 4, 2, doc,
        Duration.ofSeconds(120), Duration.ofMillis(500));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ClientBenchmark.Result r = ClientBenchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));
    assertEquals(0, r.errors(), out.toString(StandardCharsets.UTF_8));
    for (String row : ClientBenchmark.ROWS) {
      assertTrue(r.medianItemsPerSecond(row) > 0, row);
    }
    for (String row : ClientBenchmark.KMS_ROWS) {
      assertTrue(r.kmsMedian(4, row).opsPerSecond() > 0, row);
      assertTrue(r.kmsMedian(1, row).p50Micros() > 0, row);
    }
    String written = Files.readString(doc);
    assertTrue(written.startsWith("# Benchmarks\n\nhand-written\n"), written);
    assertTrue(written.contains("| BatchEncrypt, 128 items per call |"), written);
    assertTrue(written.contains("| KMS v2 Encrypt 32 B through the plugin (UNIX socket) | 4 |"), written);
  }
}

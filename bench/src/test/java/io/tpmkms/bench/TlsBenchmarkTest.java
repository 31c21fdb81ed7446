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
 * The TLS suite in a tiny mode against two packaged key services of this checkout: every row
 * measured without errors (so the TLS and mutual TLS clients really got through), the section written.
 */
class TlsBenchmarkTest {
  @TempDir
  Path tmp;

  @Test
  void tinyRun_plaintextTlsAndMutualTls_measuredWithoutFailures() throws Exception {
    Path jar = Path.of(System.getProperty("tpmkms.bench.service-jar",
        "../key-service/target/quarkus-app/quarkus-run.jar"));
    Assumptions.assumeTrue(Files.isRegularFile(jar), "key service not packaged at " + jar.toAbsolutePath());
    Path doc = tmp.resolve("benchmarks.md");
    Files.writeString(doc, "# Benchmarks\n\nhand-written\n");
    var options = new TlsBenchmark.Options(jar, 1, Duration.ofMillis(300), Duration.ofSeconds(1), 4, 2, 5, doc,
        Duration.ofSeconds(120), Duration.ofMillis(300));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    TlsBenchmark.Result r = TlsBenchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));
    assertEquals(0, r.errors(), out.toString(StandardCharsets.UTF_8));
    for (String mode : TlsBenchmark.MODES) {
      assertTrue(r.medianOpsPerSecond(mode) > 0, mode);
      assertTrue(r.medianCpuMicros(mode) > 0, mode + ": service CPU per call " + r.medianCpuMicros(mode));
    }
    assertEquals(4, r.handshakes().size());
    assertEquals("BoringSSL (netty-tcnative)", r.serverEngine(), "the TLS service's engine, from its health answer");
    String written = Files.readString(doc);
    assertTrue(written.startsWith("# Benchmarks\n\nhand-written\n"), written);
    assertTrue(written.contains("| mutual TLS 1.3 |"), written);
  }
}

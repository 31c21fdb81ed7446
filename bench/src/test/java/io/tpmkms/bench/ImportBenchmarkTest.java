package io.tpmkms.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The import suite in a tiny mode: the JCA and raw TPM baselines on a fresh swtpm, then the packaged
 * key service of this checkout on that swtpm. Skipped when swtpm is not installed or the key service
 * is not packaged.
 */
class ImportBenchmarkTest {

    @TempDir
    Path tmp;

    @Test
    void tinyRun_baselinesAndService_measuredWithoutFailures() throws Exception {
        Path jar = Path.of(System.getProperty("tpmkms.bench.service-jar",
                "../key-service/target/quarkus-app/quarkus-run.jar"));
        Assumptions.assumeTrue(onPath("swtpm"), "swtpm not installed; import benchmark skipped");
        Assumptions.assumeTrue(Files.isRegularFile(jar), "key service not packaged at " + jar.toAbsolutePath());
        Path doc = tmp.resolve("benchmarks.md");
        Files.writeString(doc, "# Benchmarks\n\nhand-written\n");
        ImportBenchmark.Options options = new ImportBenchmark.Options(jar, 1, 3, doc, Duration.ofSeconds(90));
        ByteArrayOutputStream out = new ByteArrayOutputStream();

        ImportBenchmark.Result r = ImportBenchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));

        String progress = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, r.failures(), progress);
        List<String> labels = r.rows().stream().map(ImportBenchmark.Row::label).toList();
        assertEquals(4, labels.stream().filter(l -> l.startsWith("JCA") || l.startsWith("raw TPM")).count(), progress);
        for (ImportBenchmark.Row row : r.rows()) {
            assertEquals(3, row.millis().size(), row.toString());
            assertTrue(row.percentile(50) > 0 && row.opsPerSecond() > 0, row.toString());
            assertTrue(row.percentile(99) >= row.percentile(50), row.toString());
        }
        assertFalse(progress.contains("killed processes left behind"), "the service left processes behind:\n" + progress);
        assertNull(r.serviceSkipped());
        assertEquals(8, r.rows().size(), progress);
        assertEquals(4, labels.stream().filter(l -> l.startsWith("gRPC ImportKeyVersion")).count(), progress);
        String written = Files.readString(doc);
        assertTrue(written.contains("hand-written") && written.contains(ReportDocument.begin(ImportBenchmark.SECTION))
                && written.contains("gRPC ImportKeyVersion EC P-256, TPM job"), written);
    }

    @Test
    void parse_importOptions_overrideDefaults() {
        ImportBenchmark.Options o = ImportBenchmark.Options.parse("--import", "--iterations", "7",
                "--warmup-iterations", "0", "--no-report");

        assertEquals(7, o.iterations());
        assertEquals(0, o.warmup());
        assertNull(o.report());
    }

    @Test
    void row_percentilesAndRate_ofKnownTimes() {
        ImportBenchmark.Row row = new ImportBenchmark.Row("x", List.of(5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0),
                0, null);

        assertEquals(5.0, row.percentile(50));
        assertEquals(9.0, row.percentile(90));
        assertEquals(10.0, row.percentile(99));
        assertEquals(10 * 1000.0 / 55, row.opsPerSecond(), 1e-9);
    }

    private static boolean onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, exe))) {
                return true;
            }
        }
        return false;
    }
}

package io.tpmkms.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI suite in a tiny mode against the packaged key service and CLI of this checkout. */
class CliBenchmarkTest {

    @TempDir
    Path tmp;

    @Test
    void tinyRun_measuresEveryCommandWithoutFailures_andWritesSection() throws Exception {
        Path jar = Path.of(System.getProperty("tpmkms.bench.service-jar",
                "../key-service/target/quarkus-app/quarkus-run.jar"));
        Path cliJar = Path.of("../cli/target/tpmkms-cli.jar");
        Assumptions.assumeTrue(Files.isRegularFile(jar) && Files.isRegularFile(cliJar),
                "key service or CLI not packaged; ./mvnw verify packages both before bench");
        Path doc = tmp.resolve("benchmarks.md");
        Files.writeString(doc, "# Benchmarks\n\nhand-written\n");
        CliBenchmark.Options options = new CliBenchmark.Options(jar, Path.of("../tpmkms"), cliJar, 2, doc);
        ByteArrayOutputStream out = new ByteArrayOutputStream();

        CliBenchmark.Result r = CliBenchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));

        String progress = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, r.failures(), progress);
        assertEquals(4, r.rows().size(), progress);
        for (CliBenchmark.Row row : r.rows()) {
            assertEquals(2, row.millis().size(), row.toString());
            assertTrue(row.percentile(50) > 0, row.toString());
        }
        assertTrue(CliBenchmark.archiveExists(cliJar), "the wrapper made its class-data sharing archive");
        String written = Files.readString(doc);
        assertTrue(written.contains("hand-written") && written.contains(ReportDocument.begin("cli"))
                && written.contains("`./tpmkms keys list`"), written);
    }

    @Test
    void percentile_ofKnownTimes() {
        CliBenchmark.Row row = new CliBenchmark.Row("x", java.util.List.of(5.0, 1.0, 3.0, 2.0, 4.0), 0);
        assertEquals(3.0, row.percentile(50));
        assertEquals(5.0, row.percentile(90));
        assertEquals(1.0, row.percentile(0));
    }
}

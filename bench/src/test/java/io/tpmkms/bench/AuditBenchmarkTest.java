package io.tpmkms.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * Runs the audit suite end to end in a tiny mode (short windows, a 20,000-record chain) against the
 * packaged audit and key services of this checkout. Skipped when either jar is missing.
 */
class AuditBenchmarkTest {

    @TempDir
    Path tmp;

    @Test
    void tinyAuditRun_appendVerifyEncryptOffOn_nonZeroRatesNoErrorsCountsMatch() throws Exception {
        Path keyJar = Path.of(System.getProperty("tpmkms.bench.service-jar",
                "../key-service/target/quarkus-app/quarkus-run.jar"));
        Path auditJar = Path.of(System.getProperty("tpmkms.bench.audit-jar",
                "../audit-service/target/quarkus-app/quarkus-run.jar"));
        Assumptions.assumeTrue(Files.isRegularFile(auditJar) && Files.isRegularFile(keyJar),
                "audit service or key service not packaged (" + auditJar.toAbsolutePath() + ", " + keyJar.toAbsolutePath()
                        + "); run ./mvnw -B -pl key-service,audit-service -am package -DskipTests first (./mvnw verify does it)");
        Path doc = tmp.resolve("benchmarks.md");
        Files.writeString(doc, "# Benchmarks\n\nhand-written\n\n<!-- bench:key-service:begin -->\nsoftware figures\n"
                + "<!-- bench:key-service:end -->\n");
        AuditBenchmark.Options options = new AuditBenchmark.Options(auditJar, keyJar, Duration.ofMillis(300),
                Duration.ofMillis(700), List.of(2), 100, 20_000, List.of(2), List.of(4), 2, doc, Duration.ofSeconds(120),
                java.util.Map.of(), true, 1, java.util.Map.of(), Duration.ofMillis(500));
        ByteArrayOutputStream out = new ByteArrayOutputStream();

        AuditReport report = AuditBenchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));

        String progress = out.toString(StandardCharsets.UTF_8);
        assertEquals(List.of(), report.failures(), progress);
        assertEquals(1, report.append().size(), progress);
        assertEquals(1, report.sweepOff().size(), progress);
        assertEquals(1, report.sweepOn().size(), progress);
        for (List<Measurement> rows : List.of(report.append(), report.encryptOff(), report.encryptOn(),
                report.sweepOff(), report.sweepOn())) {
            for (Measurement m : rows) {
                assertTrue(m.operations() > 0 && m.opsPerSecond() > 0, m + "\n" + progress);
                assertEquals(0, m.errors(), m + "\n" + progress);
                assertTrue(m.p99Micros() >= m.p50Micros(), m.toString());
            }
        }
        assertEquals(20_000, report.growth().chainLength(), progress);
        assertEquals(2, report.verifications().size(), progress);
        // each VerifyChain is itself recorded after it has read (ADR 0023): the second one checks the first's record too
        for (int i = 0; i < report.verifications().size(); i++) {
            AuditWorkloads.Verification v = report.verifications().get(i);
            assertTrue(v.response().getValid() && v.response().getRecordsChecked() == 20_000 + i
                    && v.recordsPerSecond() > 0, v + "\n" + progress);
        }
        AuditReport.Reconciliation r = report.reconciliation();
        assertTrue(r.acknowledgedEncrypts() > 0 && r.matches() && r.tailValid(), r + "\n" + progress);
        assertTrue(r.newRecords() > r.acknowledgedEncrypts(), "CreateKey etc. are recorded too: " + r);
        assertTrue(report.cost(2).isPresent(), progress);
        assertTrue(report.sweepCost(4).isPresent() && report.saturatedCost().isPresent(), progress);

        String written = Files.readString(doc);
        assertTrue(written.contains("hand-written") && written.contains("software figures"), written);
        assertTrue(written.contains(ReportDocument.begin("audit")) && written.contains(ReportDocument.end("audit"))
                && written.contains("Target: append at least"), written);
        assertTrue(!progress.contains("killed processes left behind"), "a service left processes behind:\n" + progress);
    }
}

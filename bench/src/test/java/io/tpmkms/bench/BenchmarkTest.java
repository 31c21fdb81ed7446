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
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the whole harness in a tiny mode against the packaged key service of this checkout. The jar
 * comes from {@code key-service}, which precedes {@code bench} in the reactor, so {@code ./mvnw verify}
 * always has it; a lone {@code -pl bench} build without it skips this test.
 */
class BenchmarkTest {

    private static final Set<String> WORKLOADS = Set.copyOf(Benchmark.Options.DEFAULT_WORKLOADS);

    @TempDir
    Path tmp;

    @Test
    void tinyRun_againstPackagedService_measuresEveryWorkloadWithoutErrorsAndWritesSection() throws Exception {
        Path jar = Path.of(System.getProperty("tpmkms.bench.service-jar",
                "../key-service/target/quarkus-app/quarkus-run.jar"));
        Assumptions.assumeTrue(Files.isRegularFile(jar),
                "key service not packaged at " + jar.toAbsolutePath()
                        + "; run ./mvnw -B -pl key-service package -DskipTests first (./mvnw verify does it)");
        Path doc = tmp.resolve("benchmarks.md");
        Files.writeString(doc, "# Benchmarks\n\nhand-written\n\n<!-- bench:tpm:begin -->\ntpm figures\n<!-- bench:tpm:end -->\n");
        Benchmark.Options options = new Benchmark.Options(jar, Duration.ofMillis(300), Duration.ofMillis(500),
                List.of(1, 2), 2, doc, Duration.ofSeconds(90), Benchmark.Options.DEFAULT_WORKLOADS);
        ByteArrayOutputStream out = new ByteArrayOutputStream();

        Report report = Benchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));

        String progress = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, report.errors(), progress);
        assertEquals(WORKLOADS.size() * 2, report.measurements().size(), progress);
        assertEquals(WORKLOADS, report.measurements().stream().map(Measurement::workload).collect(Collectors.toSet()));
        for (Measurement m : report.measurements()) {
            assertTrue(m.opsPerSecond() > 0, m + "\n" + progress);
            assertTrue(m.p99Micros() >= m.p50Micros(), m.toString());
        }
        assertTrue(report.targetRatio().isPresent(), progress);
        assertTrue(report.ratio("grpc-sign-rsa", "grpc-sign-rsa-java").isPresent(), progress);
        assertTrue(report.verdict().contains("gRPC Sign RSA-2048") && !report.verdict().contains("not measured"),
                report.verdict());

        String written = Files.readString(doc);
        assertTrue(written.contains("hand-written") && written.contains("tpm figures"), written);
        assertTrue(written.contains(ReportDocument.begin("key-service")) && written.contains("gRPC Encrypt"), written);
        assertTrue(progress.contains("killed processes left behind") == false,
                "the service left processes behind:\n" + progress);
        List<String> survivors = survivors(Path.of(System.getProperty("java.io.tmpdir")));
        assertTrue(survivors.isEmpty(), "a service process survived: " + survivors);
    }

    /**
     * Processes still running out of a service's temporary directory (ServiceProcess) (a PostgreSQL, say), after
     * giving them up to 15 s to finish exiting: on a loaded machine a fast shutdown can take a moment
     * after the service's JVM is gone. Empty when none.
     */
    private static List<String> survivors(Path tmpRoot) throws InterruptedException {
        String needle = tmpRoot.resolve("tpmkms-service-").toString();
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(15);
        while (true) {
            List<String> alive = ProcessHandle.allProcesses()
                    .filter(ProcessHandle::isAlive)
                    .filter(p -> p.info().commandLine().map(c -> c.contains(needle)).orElse(false))
                    .map(p -> p.pid() + " " + p.info().commandLine().orElse("?"))
                    .collect(Collectors.toList());
            if (alive.isEmpty() || System.nanoTime() > deadline) {
                return alive;
            }
            Thread.sleep(250);
        }
    }
}

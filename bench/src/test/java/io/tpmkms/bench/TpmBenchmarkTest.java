package io.tpmkms.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
 * Runs the TPM suite end to end in a tiny mode: a fresh swtpm, a short tpm2_sign loop, the raw
 * backend, then the packaged key service of this checkout on that swtpm. Skipped when swtpm or
 * tpm2-tools are not installed or the key service is not packaged.
 */
class TpmBenchmarkTest {

    private static final Set<String> WORKLOADS = Set.of("tpm2-sign", "raw-tpm-ecdsa", "raw-tpm-ecdsa-policy",
            "raw-tpm-ecdsa-pcr", "raw-tpm-rsa", "raw-tpm-aes", "raw-tpm-export", "raw-tpm-import-duplicate",
            "grpc-tpm-ecdsa", "grpc-tpm-ecdsa-policy", "grpc-tpm-rsa", "grpc-tpm-aes");

    @TempDir
    Path tmp;

    @Test
    void tinyTpmRun_rawTpm2ToolsAndGrpc_allRatesNonZeroWithoutErrors() throws Exception {
        Path jar = Path.of(System.getProperty("tpmkms.bench.service-jar",
                "../key-service/target/quarkus-app/quarkus-run.jar"));
        Assumptions.assumeTrue(onPath("swtpm") && Tpm2SignLoop.available(),
                "swtpm or tpm2-tools not installed (apt-get install -y swtpm swtpm-tools tpm2-tools); TPM benchmark skipped");
        Assumptions.assumeTrue(Files.isRegularFile(jar),
                "key service not packaged at " + jar.toAbsolutePath()
                        + "; run ./mvnw -B -pl key-service package -DskipTests first (./mvnw verify does it)");
        Path doc = tmp.resolve("benchmarks.md");
        Files.writeString(doc, "# Benchmarks\n\nhand-written\n\n<!-- bench:key-service:begin -->\nsoftware figures\n"
                + "<!-- bench:key-service:end -->\n");
        TpmBenchmark.Options options = new TpmBenchmark.Options(jar, Duration.ofMillis(200), Duration.ofMillis(400),
                List.of(1, 2), List.of(1, 2), 2, 5, doc, Duration.ofSeconds(90));
        ByteArrayOutputStream out = new ByteArrayOutputStream();

        TpmReport report = TpmBenchmark.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));

        String progress = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, report.errors(), progress);
        assertEquals(1 + 5 * 2 + 2 + 4 * 2, report.measurements().size(), progress);
        assertEquals(WORKLOADS, report.measurements().stream().map(Measurement::workload).collect(Collectors.toSet()));
        for (Measurement m : report.measurements()) {
            assertTrue(m.operations() > 0 && m.opsPerSecond() > 0, m + "\n" + progress);
            assertTrue(m.p99Micros() >= m.p50Micros(), m.toString());
        }
        assertTrue(report.targetRatio().isPresent(), progress);
        assertTrue(report.policyVerdict().contains("DUPLICABLE keys (policy sessions), medians of 3 alternating rounds"),
                report.policyVerdict());
        assertEquals(2 * 2 * TpmBenchmark.ALTERNATING_ROUNDS, report.alternating().size());

        String written = Files.readString(doc);
        assertTrue(written.contains("hand-written") && written.contains("software figures"), written);
        assertTrue(written.contains(ReportDocument.begin(TpmBenchmark.SECTION))
                && written.contains("raw TPM Sign ECDSA") && written.contains("gRPC Sign ECDSA"), written);
        assertFalse(progress.contains("killed processes left behind"), "the service left processes behind:\n" + progress);
    }

    @Test
    void parse_tpmOptions_overrideDefaults() {
        TpmBenchmark.Options o = TpmBenchmark.Options.parse("--tpm", "--raw-threads", "1,4", "--threads", "2",
                "--tpm2-sign-ops", "0", "--measure", "2s", "--no-report");

        assertEquals(List.of(1, 4), o.rawThreads());
        assertEquals(List.of(2), o.grpcThreads());
        assertEquals(0, o.tpm2SignOps());
        assertEquals(Duration.ofSeconds(2), o.window());
        assertEquals(null, o.report());
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

package io.tpmkms.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class ReportDocumentTest {

    @Test
    void update_existingSection_replacesOnlyBetweenItsMarkers() {
        String doc = "# B\n\nintro\n\n<!-- bench:key-service:begin -->\nold\n<!-- bench:key-service:end -->\n\nnotes\n\n"
                + "<!-- bench:tpm:begin -->\ntpm\n<!-- bench:tpm:end -->\n";

        String updated = ReportDocument.update(doc, "key-service", "new figures\n");

        assertEquals("# B\n\nintro\n\n<!-- bench:key-service:begin -->\nnew figures\n<!-- bench:key-service:end -->\n\nnotes\n\n"
                + "<!-- bench:tpm:begin -->\ntpm\n<!-- bench:tpm:end -->\n", updated);
    }

    @Test
    void update_missingSection_appendsIt() {
        String updated = ReportDocument.update("# B\n\nintro\n", "audit", "x");

        assertEquals("# B\n\nintro\n\n<!-- bench:audit:begin -->\nx\n<!-- bench:audit:end -->\n", updated);
    }

    @Test
    void update_emptyDocument_startsWithTheHeader() {
        String updated = ReportDocument.update("", "key-service", "x");

        assertTrue(updated.startsWith(ReportDocument.HEADER.stripTrailing()), updated);
        assertTrue(updated.endsWith("<!-- bench:key-service:begin -->\nx\n<!-- bench:key-service:end -->\n"), updated);
    }

    @Test
    void parse_durationsAndThreads_overrideDefaults() {
        Benchmark.Options o = Benchmark.Options.parse("--warmup", "500ms", "--measure", "1.5s", "--threads", "1,2",
                "--no-report");

        assertEquals(Duration.ofMillis(500), o.warmup());
        assertEquals(Duration.ofMillis(1500), o.window());
        assertEquals(java.util.List.of(1, 2), o.threads());
        assertEquals(null, o.report());
    }
}

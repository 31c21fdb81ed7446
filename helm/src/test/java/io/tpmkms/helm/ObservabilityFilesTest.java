package io.tpmkms.helm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.tpmkms.testing.ObservabilityFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * deploy/observability (issue 18): the alert rules are valid YAML in Prometheus's rule-file shape, the
 * dashboard valid Grafana JSON, every query's brackets balance, and every tpmkms metric they use is
 * in the metrics reference of docs/operations.md. (That the services export each one is checked
 * against real scrapes: TpmKeyServiceTest, AuditDeliveryIT.)
 */
class ObservabilityFilesTest {
  private static final Path DIR = ObservabilityFiles.dir();

  @Test
  void alertRules_haveThePrometheusShape() throws Exception {
    JsonNode root = new ObjectMapper(new YAMLFactory()).readTree(DIR.resolve(ObservabilityFiles.ALERTS).toFile());
    JsonNode groups = root.path("groups");
    assertTrue(groups.isArray() && groups.size() > 0, "groups");
    Set<String> names = new HashSet<>();
    List<String> wrong = new ArrayList<>();
    for (JsonNode g : groups) {
      assertFalse(g.path("name").asText().isEmpty(), "group name");
      for (JsonNode r : g.path("rules")) {
        String alert = r.path("alert").asText();
        if (!alert.matches("Tpmkms[A-Z][A-Za-z]+")) wrong.add("alert name " + alert);
        if (!names.add(alert)) wrong.add("duplicate " + alert);
        String expr = r.path("expr").asText();
        if (expr.isBlank() || !balanced(expr)) wrong.add(alert + ": expr " + expr);
        if (!r.path("for").asText().matches("\\d+[smh]")) wrong.add(alert + ": for");
        if (!Set.of("page", "warn").contains(r.path("labels").path("severity").asText())) wrong.add(alert + ": severity");
        if (r.path("annotations").path("summary").asText().isBlank()) wrong.add(alert + ": summary");
      }
    }
    assertTrue(wrong.isEmpty(), String.join("\n", wrong));
    assertTrue(names.containsAll(Set.of("TpmkmsHighErrorRate", "TpmkmsHighLatency", "TpmkmsAuditLag", "TpmkmsTpmErrors",
        "TpmkmsCheckpointStale", "TpmkmsNotReady")), names.toString());
  }

  @Test
  void dashboard_isGrafanaJson_withAQueryOnEveryPanel() throws Exception {
    JsonNode d = new ObjectMapper().readTree(DIR.resolve(ObservabilityFiles.DASHBOARD).toFile());
    assertEquals("tpmkms-overview", d.path("uid").asText());
    assertTrue(d.path("panels").size() >= 10, "panels");
    Set<Integer> ids = new HashSet<>();
    List<String> wrong = new ArrayList<>();
    for (JsonNode p : d.path("panels")) {
      if (!ids.add(p.path("id").asInt())) wrong.add("duplicate panel id " + p.path("id"));
      if (p.path("targets").size() == 0) wrong.add(p.path("title").asText() + ": no query");
      for (JsonNode t : p.path("targets")) {
        String e = t.path("expr").asText();
        if (e.isBlank() || !balanced(e) || !e.contains("tpmkms_")) wrong.add(p.path("title").asText() + ": " + e);
      }
    }
    assertTrue(wrong.isEmpty(), String.join("\n", wrong));
  }

  @Test
  void everyMetricUsed_isInTheMetricsReference() throws Exception {
    String reference = Files.readString(DIR.resolve("../../docs/operations.md").normalize());
    Set<String> used = ObservabilityFiles.metricNames();
    assertTrue(used.size() >= 15, used.toString());
    List<String> undocumented = new ArrayList<>();
    for (String name : used) {
      String family = name.replaceAll("_(bucket|count|sum)$", "");
      if (!reference.contains("`" + name + "`") && !reference.contains("`" + family + "`")) undocumented.add(name);
    }
    assertTrue(undocumented.isEmpty(), "not in docs/operations.md's metrics reference: " + undocumented);
  }

  /** Whether (), [] and {} pair up (quoted strings skipped). */
  static boolean balanced(String s) {
    java.util.ArrayDeque<Character> stack = new java.util.ArrayDeque<>();
    boolean quoted = false;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' && (i == 0 || s.charAt(i - 1) != '\\')) quoted = !quoted;
      if (quoted) continue;
      switch (c) {
        case '(', '[', '{' -> stack.push(c);
        case ')' -> { if (stack.isEmpty() || stack.pop() != '(') return false; }
        case ']' -> { if (stack.isEmpty() || stack.pop() != '[') return false; }
        case '}' -> { if (stack.isEmpty() || stack.pop() != '{') return false; }
        default -> { }
      }
    }
    return stack.isEmpty() && !quoted;
  }
}

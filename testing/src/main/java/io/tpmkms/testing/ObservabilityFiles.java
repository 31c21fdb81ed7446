package io.tpmkms.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The operator files under {@code deploy/observability/} (issue 18) — the Grafana dashboard and the
 * Prometheus alert rules — and the tpmkms metric names their queries use (JDK only: the system
 * tests take this class without its module's dependencies).
 */
public final class ObservabilityFiles {
  public static final String DASHBOARD = "tpmkms-dashboard.json";
  public static final String ALERTS = "tpmkms-alerts.yaml";
  private static final Pattern METRIC = Pattern.compile("\\btpmkms_[a-z0-9_]+");

  private ObservabilityFiles() {}

  /** {@code deploy/observability} of the checkout, found from a module's working directory. */
  public static Path dir() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path d = p.resolve("deploy/observability");
      if (Files.isDirectory(d)) return d;
    }
    throw new IllegalStateException("no deploy/observability above " + Path.of("").toAbsolutePath());
  }

  /** Every tpmkms sample name the dashboard's and the rules' queries use. */
  public static Set<String> metricNames() throws IOException {
    Set<String> names = new TreeSet<>();
    for (String f : new String[] {DASHBOARD, ALERTS}) {
      Matcher m = METRIC.matcher(Files.readString(dir().resolve(f)));
      while (m.find()) names.add(m.group());
    }
    return names;
  }

  /** The names the audit service exports (its chain), as opposed to the key service's. */
  public static boolean auditServiceOnly(String name) {
    return name.startsWith("tpmkms_audit_chain_") || name.startsWith("tpmkms_audit_writer_")
        || name.startsWith("tpmkms_audit_checkpoint_");
  }
}

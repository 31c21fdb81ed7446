package io.tpmkms.platform.metrics;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** The service's own meters (issue 18, ADR 0029). */
@ConfigMapping(prefix = "tpmkms.metrics")
public interface MetricsConfig {
  /**
   * Whether calls and TPM commands are counted and timed (default true). Off only to measure what
   * that costs: the per-call interceptor then passes calls through ({@code TPMKMS_METRICS_ENABLED}).
   */
  @WithDefault("true")
  boolean enabled();
}

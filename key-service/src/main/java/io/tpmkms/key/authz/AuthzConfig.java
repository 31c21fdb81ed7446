package io.tpmkms.key.authz;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.Optional;

/** Where the key service gets its authorization decisions (docs/authorization.md). */
@ConfigMapping(prefix = "tpmkms.authz")
public interface AuthzConfig {
  /** host:port of the policy service; required unless tpmkms.auth.mode=none. */
  Optional<String> policyService();

  /**
   * How long a decision is re-used for the same principal, action and
   * resource. With the policy service's reload interval this bounds how long a
   * policy or binding change takes to apply.
   */
  @WithDefault("5s")
  Duration cacheTtl();

  /** At most this many decisions are remembered. */
  @WithDefault("100000")
  int cacheSize();

  /** How long the key service waits for a decision before refusing the call (UNAVAILABLE). */
  @WithDefault("2s")
  Duration timeout();
}

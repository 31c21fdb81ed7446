package io.tpmkms.policy;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;

/** Settings of the policy service (docs/authorization.md). */
@ConfigMapping(prefix = "tpmkms.policy")
public interface PolicyConfig {
  /**
   * How often the store revision is polled. A change committed on any
   * replica is in force on every replica within this interval plus one
   * reload (on the replica that made it: at once).
   */
  @WithDefault("500ms")
  Duration reloadInterval();

  /** Whether an empty store gets the five tpmkms-&lt;role&gt; realm-role bindings on the deployment. */
  @WithDefault("true")
  boolean bootstrap();
}

package io.tpmkms.platform.auth;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;

/** How callers are authenticated (docs/authorization.md). */
@ConfigMapping(prefix = "tpmkms.auth")
public interface AuthConfig {
  enum Mode {
    /** Every call carries a Keycloak access token, verified by quarkus-oidc. */
    OIDC,
    /** No authentication: everyone is anonymous. Refused unless the gRPC server listens on loopback only. */
    NONE
  }

  @WithDefault("oidc")
  Mode mode();

  /**
   * How long a verified token is remembered (never past its own expiry), so
   * that the hot path does not verify the same signature on every call.
   */
  @WithDefault("60s")
  Duration tokenCacheTtl();

  /** At most this many verified tokens are remembered. */
  @WithDefault("10000")
  int tokenCacheSize();
}

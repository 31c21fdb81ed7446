package io.tpmkms.key;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import io.tpmkms.protection.ProtectionLevel;
import java.time.Duration;

/** The key service's own settings ({@code tpmkms.*}); see docs/operations.md. */
@ConfigMapping(prefix = "tpmkms")
public interface KmsConfig {
  /** Local state: the software root seed and the embedded database. */
  String dataDir();

  Backend backend();

  Destruction destruction();

  Rotation rotation();

  Cache cache();

  interface Backend {
    /** Protection level of keys created without one. */
    ProtectionLevel defaultProtectionLevel();

    Software software();

    interface Software {
      /** The software root seed; created (0600) on first start. */
      String seedFile();
    }
  }

  interface Destruction {
    /** Delay before a scheduled destruction happens when the request names none. */
    Duration defaultDelay();
    Duration minDelay();
    Duration maxDelay();
    /** How often each replica looks for versions due for destruction. */
    String checkInterval();
  }

  interface Rotation {
    /** The shortest rotation period a key may have. */
    Duration minPeriod();
    /** How often each replica looks for keys due for rotation. */
    String checkInterval();
  }

  interface Cache {
    /**
     * How long a replica may use its cached view of a key for cryptographic
     * operations: the bound on how late another replica sees a state change.
     */
    @WithDefault("5S")
    Duration ttl();
  }
}

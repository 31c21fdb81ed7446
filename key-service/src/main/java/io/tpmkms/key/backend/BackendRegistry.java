package io.tpmkms.key.backend;

import io.quarkus.runtime.Startup;
import io.tpmkms.key.KmsConfig;
import io.tpmkms.key.error.ErrorCode;
import io.tpmkms.key.error.KmsException;
import io.tpmkms.key.error.Reasons;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.software.FileRootKeySource;
import io.tpmkms.protection.software.SoftwareKeyProtectionBackend;
import io.agroal.api.AgroalDataSource;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.EnumMap;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * The configured key-protection backends, one per protection level, chosen by
 * configuration ({@code tpmkms.backend.*}). The software backend is always
 * present; the TPM backend joins when a TPM is configured.
 */
@Startup
@ApplicationScoped
public class BackendRegistry {
  private static final Logger LOG = Logger.getLogger(BackendRegistry.class);

  private final Map<ProtectionLevel, KeyProtectionBackend> backends = new EnumMap<>(ProtectionLevel.class);
  private final ProtectionLevel defaultLevel;

  public BackendRegistry(KmsConfig config, AgroalDataSource db) {
    Path seed = Path.of(config.backend().software().seedFile());
    if (!Files.exists(seed)) {
      refuseNewSeedOverExistingKeys(seed, db);
    }
    backends.put(ProtectionLevel.SOFTWARE, new SoftwareKeyProtectionBackend(new FileRootKeySource(seed)));
    this.defaultLevel = config.backend().defaultProtectionLevel();
    if (!backends.containsKey(defaultLevel)) {
      throw new IllegalStateException("default protection level " + defaultLevel + " has no configured backend");
    }
    LOG.infof("key protection backends: %s (default %s)", backends.keySet(), defaultLevel);
  }

  /** The level to use when a request names none. */
  public ProtectionLevel resolve(ProtectionLevel requested) {
    return requested == null ? defaultLevel : requested;
  }

  /** @throws KmsException UNIMPLEMENTED when no backend serves the level */
  public KeyProtectionBackend forLevel(ProtectionLevel level) {
    KeyProtectionBackend b = backends.get(level);
    if (b == null) {
      throw new KmsException(ErrorCode.UNIMPLEMENTED, Reasons.PROTECTION_LEVEL_UNAVAILABLE,
          "protection level " + level + " is not available on this server");
    }
    return b;
  }

  /** The backend for a level, checked to support an algorithm and a capability. */
  public KeyProtectionBackend require(ProtectionLevel level, KeyAlgorithm algorithm, Capability capability) {
    KeyProtectionBackend b = forLevel(level);
    if (!b.describe().supports(algorithm) || !b.describe().supports(capability)) {
      throw new KmsException(ErrorCode.UNIMPLEMENTED, Reasons.CAPABILITY_UNAVAILABLE,
          "protection level " + level + " does not support " + algorithm);
    }
    return b;
  }

  /**
   * A missing seed file is created on first start. If the catalogue already
   * holds SOFTWARE key material, the seed was lost or misconfigured: a new one
   * would make every such key unusable, so refuse to start instead.
   */
  private static void refuseNewSeedOverExistingKeys(Path seed, AgroalDataSource db) {
    long wrapped;
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM kms_key_version"
            + " WHERE protection_level = 'SOFTWARE' AND key_blob IS NOT NULL");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      wrapped = rs.getLong(1);
    } catch (SQLException e) {
      return; // no catalogue yet: a fresh installation
    }
    if (wrapped > 0) {
      throw new IllegalStateException("the software root seed " + seed + " is missing but the database holds "
          + wrapped + " SOFTWARE key versions wrapped under a seed; restore the seed file from backup"
          + " (or point tpmkms.backend.software.seed-file at it) instead of starting with a new one");
    }
  }

  @PreDestroy
  void close() {
    backends.values().forEach(KeyProtectionBackend::close);
  }
}

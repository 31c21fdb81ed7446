package io.tpmkms.key.backend;

import io.quarkus.runtime.Startup;
import io.tpmkms.key.KmsConfig;
import io.tpmkms.key.catalogue.KeyCatalogue;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.protection.AsymmetricCrypto;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.software.FileRootKeySource;
import io.tpmkms.protection.software.RootKeySource;
import io.tpmkms.protection.software.SoftwareKeyProtectionBackend;
import io.tpmkms.protection.tpm.TpmConfig;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import io.tpmkms.protection.tpm.TpmSealedRootKeySource;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * The configured key-protection backends, one per protection level, chosen by
 * configuration ({@code tpmkms.backend.*}). The software backend is always
 * present. With a TPM configured ({@code tpmkms.backend.tpm.transport}) the
 * TPM backend joins, the software root seed is sealed by the TPM instead of
 * lying in a plain file, and TPM becomes the default protection level.
 *
 * <p>Both backends share one {@link TpmConnection}: a TPM serves one command
 * at a time (swtpm even one connection), so all TPM access is one queue.
 */
@Startup
@ApplicationScoped
public class BackendRegistry {
  private static final Logger LOG = Logger.getLogger(BackendRegistry.class);

  private final Map<ProtectionLevel, KeyProtectionBackend> backends = new EnumMap<>(ProtectionLevel.class);
  private final ProtectionLevel defaultLevel;
  private TpmConnection tpm;

  public BackendRegistry(KmsConfig config, KeyCatalogue catalogue, io.tpmkms.platform.health.ServerInfo info,
      io.tpmkms.platform.metrics.TpmMetrics tpmMetrics, io.tpmkms.platform.health.Readiness readiness) {
    AsymmetricCrypto crypto = AsymmetricCrypto.install(config.crypto().provider());
    info.put("crypto", crypto.summary());
    Path plainSeed = Path.of(config.backend().software().seedFile());
    var tpmConfig = config.backend().tpm();
    RootKeySource root;
    if (tpmConfig.isPresent()) {
      tpm = TpmConnection.open(tpmConfig.get().toTpmConfig());
      tpmMetrics.watch(tpm);
      TpmConnection probed = tpm;
      readiness.register("tpm", probed::problem);
      Path sealed = Path.of(tpmConfig.get().sealedSeedFile().orElse(config.dataDir() + "/software-root.sealed"));
      if (!Files.exists(sealed) && !Files.exists(plainSeed)) {
        refuseNewSeedOverExistingKeys(sealed, catalogue);
      }
      byte[] seed = new TpmSealedRootKeySource(tpm, sealed, plainSeed,
          tpmConfig.get().rootSeal(Path.of(config.dataDir()))).rootSeed();
      root = () -> seed.clone();
      backends.put(ProtectionLevel.TPM, new TpmKeyProtectionBackend(tpm, seed));
    } else {
      if (!Files.exists(plainSeed)) {
        refuseNewSeedOverExistingKeys(plainSeed, catalogue);
      }
      root = new FileRootKeySource(plainSeed);
    }
    backends.put(ProtectionLevel.SOFTWARE,
        new SoftwareKeyProtectionBackend(root, SoftwareKeyProtectionBackend.DEFAULT_CACHE_CAPACITY, crypto));
    this.defaultLevel = config.backend().defaultProtectionLevel()
        .orElse(tpm != null ? ProtectionLevel.TPM : ProtectionLevel.SOFTWARE);
    if (!backends.containsKey(defaultLevel)) {
      throw new IllegalStateException("default protection level " + defaultLevel + " has no configured backend"
          + " (set tpmkms.backend.tpm.transport to use a TPM)");
    }
    LOG.infof("key protection backends: %s (default %s)", backends.keySet(), defaultLevel);
    info.put("backends", backends.keySet() + " (default " + defaultLevel + ")");
  }


  /** The level to use when a request names none. */
  public ProtectionLevel resolve(ProtectionLevel requested) {
    return requested == null ? defaultLevel : requested;
  }

  /** @throws ServiceException UNIMPLEMENTED when no backend serves the level */
  public KeyProtectionBackend forLevel(ProtectionLevel level) {
    KeyProtectionBackend b = backends.get(level);
    if (b == null) {
      throw new ServiceException(ErrorCode.UNIMPLEMENTED, KeyReason.PROTECTION_LEVEL_UNAVAILABLE,
          "protection level " + level + " is not available on this server");
    }
    return b;
  }

  /** The backend for a level, checked to support an algorithm and a capability. */
  public KeyProtectionBackend require(ProtectionLevel level, KeyAlgorithm algorithm, Capability capability) {
    KeyProtectionBackend b = forLevel(level);
    if (!b.describe().supports(algorithm) || !b.describe().supports(capability)) {
      throw new ServiceException(ErrorCode.UNIMPLEMENTED, KeyReason.CAPABILITY_UNAVAILABLE,
          "protection level " + level + " does not support " + capability + " with " + algorithm);
    }
    return b;
  }

  /**
   * A missing seed is created on first start. If the catalogue already holds
   * SOFTWARE key material, the seed was lost or misconfigured: a new one would
   * make every such key unusable, so refuse to start instead.
   */
  private static void refuseNewSeedOverExistingKeys(Path seed, KeyCatalogue catalogue) {
    // SOFTWARE blobs are wrapped under the seed, TPM objects' auth values derive from it: any live blob counts.
    // Unreadable (empty): no catalogue yet, a fresh installation.
    long wrapped = catalogue.countVersionsHoldingMaterial().orElse(0);
    if (wrapped > 0) {
      throw new IllegalStateException("the software root seed " + seed + " is missing but the database holds "
          + wrapped + " key versions and import jobs that depend on it; restore the seed file from backup"
          + " (or point the configuration at it) instead of starting with a new one");
    }
  }

  @PreDestroy
  void close() {
    backends.values().forEach(KeyProtectionBackend::close);
    if (tpm != null) tpm.close();
  }
}

package io.tpmkms.key.lifecycle;

import io.tpmkms.key.error.KeyErrors;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.tpmkms.key.KmsConfig;
import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.key.backend.BackendRegistry;
import io.tpmkms.key.catalogue.KeyCatalogue;
import io.tpmkms.key.catalogue.KeyEntity;
import io.tpmkms.key.catalogue.KeyVersionEntity;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.lifecycle.KeyNames.KeyName;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.ExportPolicy;
import io.tpmkms.protection.PlatformBinding;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.ProtectionLevel;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Event;
import jakarta.persistence.EntityManager;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * The key lifecycle: creation, rotation, state changes, scheduled destruction.
 *
 * <p>Every mutation runs in its own transaction that first takes the key's row
 * lock ({@code SELECT ... FOR UPDATE}), so concurrent calls on one key — from
 * this replica or another — are serialized and invariants (one ENABLED
 * primary, version numbers never reused) hold. Material is generated
 * <em>before</em> the transaction (a TPM may take seconds) and destroyed again
 * if the transaction does not commit: generate → persist → on failure destroy.
 *
 * <p>After every commit a {@link KeyChanged} event is fired so caches drop the
 * key at once on this replica; other replicas see the change within the cache
 * TTL.
 *
 * <p>The transactions are this class's; what they read, lock and write in the
 * key tables goes through the {@link KeyCatalogue}, in the same transaction.
 */
@ApplicationScoped
public class KeyLifecycleService {
  private static final Logger LOG = Logger.getLogger(KeyLifecycleService.class);

  private final KeyCatalogue catalogue;
  /** The transaction's persistence context, only to hand to {@link AuditLog#recordInTransaction} (the outbox). */
  private final EntityManager outbox;
  private final BackendRegistry backends;
  private final KmsConfig config;
  private final Event<KeyChanged> changed;
  private final AuditLog audit;

  public KeyLifecycleService(KeyCatalogue catalogue, EntityManager outbox, BackendRegistry backends, KmsConfig config,
      Event<KeyChanged> changed, AuditLog audit) {
    this.catalogue = catalogue;
    this.outbox = outbox;
    this.backends = backends;
    this.config = config;
    this.changed = changed;
    this.audit = audit;
  }

  /** Fired after a key's committed state changed. */
  public record KeyChanged(String key) {}

  /** A key and its primary version, detached. */
  public record KeyView(KeyEntity key, KeyVersionEntity primary) {}

  /** What CreateKey asks for; null fields take defaults. */
  public record CreateKeyCommand(
      String namespace, String name, KeyPurpose purpose, KeyAlgorithm algorithm, ProtectionLevel protectionLevel,
      Duration rotationPeriod, Instant nextRotationTime, Map<String, String> labels, boolean importOnly,
      ExportPolicy exportPolicy, PlatformBinding platformBinding) {
    public CreateKeyCommand(String namespace, String name, KeyPurpose purpose, KeyAlgorithm algorithm,
        ProtectionLevel protectionLevel, Duration rotationPeriod, Instant nextRotationTime, Map<String, String> labels,
        boolean importOnly, ExportPolicy exportPolicy) {
      this(namespace, name, purpose, algorithm, protectionLevel, rotationPeriod, nextRotationTime, labels, importOnly,
          exportPolicy, null);
    }

    public CreateKeyCommand(String namespace, String name, KeyPurpose purpose, KeyAlgorithm algorithm,
        ProtectionLevel protectionLevel, Duration rotationPeriod, Instant nextRotationTime, Map<String, String> labels) {
      this(namespace, name, purpose, algorithm, protectionLevel, rotationPeriod, nextRotationTime, labels, false);
    }

    public CreateKeyCommand(String namespace, String name, KeyPurpose purpose, KeyAlgorithm algorithm,
        ProtectionLevel protectionLevel, Duration rotationPeriod, Instant nextRotationTime, Map<String, String> labels,
        boolean importOnly) {
      this(namespace, name, purpose, algorithm, protectionLevel, rotationPeriod, nextRotationTime, labels, importOnly,
          ExportPolicy.NON_EXPORTABLE);
    }
  }

  /** The export policy a command asks for (null: NON_EXPORTABLE). */
  private static ExportPolicy exportPolicyOf(CreateKeyCommand cmd) {
    return cmd.exportPolicy() == null ? ExportPolicy.NON_EXPORTABLE : cmd.exportPolicy();
  }

  /**
   * Material imported into a backend, ready to become a version: its new handle, the
   * material's fingerprint (kept with the tombstone) and the job it came through.
   */
  public record ImportedKey(KeyAlgorithm algorithm, GeneratedKey key, byte[] fingerprint, String importJob,
      boolean duplicated) {
    public ImportedKey(KeyAlgorithm algorithm, GeneratedKey key, byte[] fingerprint, String importJob) {
      this(algorithm, key, fingerprint, importJob, false);
    }
  }

  /** A key and one of its versions, detached. */
  public record VersionView(KeyEntity key, KeyVersionEntity version) {}

  /** What UpdateKey asks for; only fields named in the mask change. */
  public record UpdateKeyCommand(
      String key, Set<String> mask, Map<String, String> labels, Duration rotationPeriod, Instant nextRotationTime,
      long etag) {}

  // ---------------------------------------------------------------------------------------------
  // create / rotate

  public KeyView createKey(CreateKeyCommand cmd) {
    KeyName kn = KeyNames.of(cmd.namespace(), cmd.name());
    if (cmd.purpose() == null) {
      throw ServiceException.invalid(KeyReason.INVALID_PURPOSE, "purpose is required");
    }
    KeyAlgorithm algorithm = cmd.algorithm() == null ? cmd.purpose().defaultAlgorithm() : cmd.algorithm();
    if (!cmd.purpose().allows(algorithm)) {
      throw ServiceException.invalid(KeyReason.INVALID_ALGORITHM,
          "algorithm " + algorithm + " does not fit purpose " + cmd.purpose());
    }
    Map<String, String> labels = cmd.labels() == null ? Map.of() : cmd.labels();
    KeyNames.checkLabels(labels);
    checkRotationPeriod(cmd.rotationPeriod());
    if (cmd.nextRotationTime() != null && cmd.rotationPeriod() == null) {
      throw ServiceException.invalid(KeyReason.INVALID_ROTATION_PERIOD, "next_rotation_time needs a rotation_period");
    }
    if (cmd.importOnly() && cmd.rotationPeriod() != null) {
      throw ServiceException.invalid(KeyReason.INVALID_ROTATION_PERIOD,
          "an import-only key cannot rotate by itself; rotate it by importing a version");
    }
    ProtectionLevel level = backends.resolve(cmd.protectionLevel());
    ExportPolicy exportPolicy = exportPolicyOf(cmd);
    if (cmd.platformBinding() != null) {
      String why = level != ProtectionLevel.TPM ? "needs protection level TPM (PCRs are the TPM's), not " + level
          : exportPolicy == ExportPolicy.DUPLICABLE ? "is not possible for a DUPLICABLE key: the PCRs are this platform's"
          : cmd.importOnly() ? "is not possible for an import-only key: only keys generated in the TPM can be bound"
          : null;
      if (why != null) throw ServiceException.invalid(KeyReason.INVALID_PLATFORM_BINDING, "platform_binding " + why);
    }
    KeyProtectionBackend backend = backends.require(level, algorithm,
        cmd.importOnly() ? Capability.IMPORT : Capability.GENERATE);
    if (findKey(kn).isPresent()) {
      throw alreadyExists(kn);
    }
    if (cmd.importOnly()) {
      KeyView view = mutation(kn.full(), v -> 0, () -> {
        Instant now = now();
        KeyEntity k = newKey(kn, cmd, algorithm, level, labels, now);
        k.importOnly = true;
        catalogue.insertKeyWithoutVersion(k);
        catalogue.flush();
        return new KeyView(k, null);
      });
      changed.fire(new KeyChanged(kn.full()));
      LOG.infof("created import-only key %s (%s, %s, %s)", kn, cmd.purpose(), algorithm, level);
      return view;
    }

    PlatformBinding binding = resolveBinding(cmd.platformBinding(), backend);
    GeneratedKey material = backend.generate(new KeySpec(algorithm, exportPolicy, binding));
    KeyView view = persistOrDestroy(backend, material.handle(), () -> mutation(kn.full(), v -> v.primary().number, () -> {
      Instant now = now();
      KeyEntity k = newKey(kn, cmd, algorithm, level, labels, now);
      k.platformBinding(binding);
      KeyVersionEntity v = catalogue.insertKey(k, newVersion(k, backend, material, now)); // version 1, primary
      catalogue.flush();
      return new KeyView(k, v);
    }), kn);
    LOG.infof("created key %s (%s, %s, %s)", kn, cmd.purpose(), algorithm, level);
    return view;
  }

  /** The binding with its values: as given, or the values the PCRs hold now (read from the key's TPM). */
  private static PlatformBinding resolveBinding(PlatformBinding requested, KeyProtectionBackend backend) {
    if (requested == null || requested.resolved()) return requested;
    return requested.withValues(backend.pcrValues(requested.pcrs()));
  }

  private static KeyEntity newKey(KeyName kn, CreateKeyCommand cmd, KeyAlgorithm algorithm, ProtectionLevel level,
      Map<String, String> labels, Instant now) {
    KeyEntity k = new KeyEntity();
    k.namespace = kn.namespace();
    k.name = kn.name();
    k.purpose = cmd.purpose();
    k.algorithm = algorithm;
    k.protectionLevel = level;
    k.exportPolicy = exportPolicyOf(cmd);
    k.labels = new HashMap<>(labels);
    k.createTime = now;
    k.updateTime = now;
    if (cmd.rotationPeriod() != null) {
      k.rotationPeriodSeconds = cmd.rotationPeriod().toSeconds();
      k.nextRotationTime = cmd.nextRotationTime() != null ? cmd.nextRotationTime() : now.plus(cmd.rotationPeriod());
    }
    return k;
  }

  /**
   * Creates the next version and makes it primary. Manual rotation does not move the schedule.
   *
   * @throws ServiceException FAILED_PRECONDITION (KEY_IMPORT_ONLY) for an import-only key
   */
  public KeyView rotateKey(String key) {
    KeyName kn = KeyNames.parse(key);
    KeyEntity snapshot = findKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
    if (snapshot.importOnly) throw importOnly(kn);
    KeyProtectionBackend backend = backends.require(snapshot.protectionLevel, snapshot.algorithm, Capability.GENERATE);
    GeneratedKey material = backend.generate(new KeySpec(snapshot.algorithm, snapshot.exportPolicy, snapshot.platformBinding()));
    KeyView view = persistOrDestroy(backend, material.handle(), () -> mutation(kn.full(), v -> v.primary().number, () -> {
      KeyEntity k = lockKey(kn);
      if (k.importOnly) throw importOnly(kn);
      KeyVersionEntity v = addPrimaryVersion(k, backend, material);
      return new KeyView(k, v);
    }), kn);
    LOG.infof("rotated key %s to version %d", kn, view.primary().number);
    return view;
  }

  /**
   * Rotates a key whose scheduled rotation is due, unless another replica got
   * there first. Exactly one rotation happens per due time: the key row is
   * taken with {@code FOR UPDATE SKIP LOCKED} and the due condition re-checked
   * under the lock.
   *
   * @return whether this call rotated the key
   */
  public boolean rotateIfDue(long keyId) {
    KeyEntity snapshot = inNewTransaction(() -> catalogue.findKey(keyId).orElse(null));
    if (snapshot == null || snapshot.importOnly) return false;
    KeyName kn = new KeyName(snapshot.namespace, snapshot.name);
    KeyProtectionBackend backend = backends.require(snapshot.protectionLevel, snapshot.algorithm, Capability.GENERATE);
    GeneratedKey material = backend.generate(new KeySpec(snapshot.algorithm, snapshot.exportPolicy, snapshot.platformBinding()));
    Integer rotated = persistOrDestroy(backend, material.handle(), () -> mutation(CallInfo.system("scheduler/RotateKey"), kn.full(), v -> v == null ? 0 : v, () -> {
      Instant now = now();
      Optional<KeyEntity> locked = catalogue.claimDueForRotation(keyId, now);
      if (locked.isEmpty()) return null;
      KeyEntity k = locked.get();
      KeyVersionEntity v = addPrimaryVersion(k, backend, material);
      Instant next = k.nextRotationTime.plusSeconds(k.rotationPeriodSeconds);
      k.nextRotationTime = next.isAfter(now) ? next : now.plusSeconds(k.rotationPeriodSeconds);
      return v.number;
    }), kn);
    if (rotated == null) {
      backend.destroy(material.handle());
      return false;
    }
    LOG.infof("scheduled rotation of key %s to version %d", kn, rotated);
    return true;
  }

  /** Ids of keys whose rotation is due, oldest first. */
  public List<Long> dueForRotation(int limit) {
    return inNewTransaction(() -> catalogue.dueForRotation(now(), limit));
  }

  // ---------------------------------------------------------------------------------------------
  // read

  public KeyView getKey(String key) {
    KeyName kn = KeyNames.parse(key);
    return inNewTransaction(() -> {
      KeyEntity k = catalogue.findKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
      return new KeyView(k, primaryOf(k));
    });
  }

  public KeyVersionEntity getVersion(String key, int number) {
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(number);
    return inNewTransaction(() -> {
      KeyEntity k = catalogue.findKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
      return version(k, number);
    });
  }

  /** A page of keys ordered by (namespace, name), after the given position. */
  public List<KeyView> listKeys(String namespace, Map<String, String> labels,
      io.tpmkms.key.catalogue.KeyCatalogue.KeyFilter filter, String afterNamespace, String afterName, int limit) {
    if (namespace != null) KeyNames.checkNamespace(namespace);
    KeyNames.checkLabels(labels);
    if (filter.nameContains() != null && filter.nameContains().length() > 128) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "name_contains is longer than 128 characters");
    }
    return inNewTransaction(() -> catalogue.pageKeys(namespace, labels, filter, afterNamespace, afterName, limit)
        .stream()
        .map(p -> new KeyView(p.key(), p.primary()))
        .toList());
  }

  /** A page of a key's versions in ascending number, after the given number. */
  public List<KeyVersionEntity> listVersions(String key, int afterNumber, int limit, boolean includeDestroyed) {
    KeyName kn = KeyNames.parse(key);
    return inNewTransaction(() -> {
      KeyEntity k = catalogue.findKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
      return catalogue.pageVersions(k.id, afterNumber, limit, includeDestroyed);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // update / state changes

  public KeyView updateKey(UpdateKeyCommand cmd) {
    KeyName kn = KeyNames.parse(cmd.key());
    Set<String> allowed = Set.of("labels", "rotation_period", "next_rotation_time");
    if (cmd.mask().isEmpty() || !allowed.containsAll(cmd.mask())) {
      throw ServiceException.invalid(KeyReason.INVALID_UPDATE_MASK,
          "update_mask must name one or more of " + allowed + ", got " + cmd.mask());
    }
    if (cmd.mask().contains("labels")) KeyNames.checkLabels(cmd.labels());
    if (cmd.mask().contains("rotation_period")) checkRotationPeriod(cmd.rotationPeriod());
    KeyView view = mutation(kn.full(), v -> v.key().primaryVersion, () -> {
      KeyEntity k = lockKey(kn);
      if (k.importOnly && cmd.mask().contains("rotation_period") && cmd.rotationPeriod() != null) {
        throw importOnly(kn);
      }
      long etag = k.rowVersion + 1;
      if (cmd.etag() != 0 && cmd.etag() != etag) {
        throw new ServiceException(ErrorCode.ABORTED, KeyReason.ETAG_MISMATCH,
            "key \"" + kn + "\" changed since etag " + cmd.etag() + " (now " + etag + "); read it again",
            Map.of("key", kn.full()), null);
      }
      Instant now = now();
      if (cmd.mask().contains("labels")) {
        k.labels.clear();
        k.labels.putAll(cmd.labels());
      }
      if (cmd.mask().contains("rotation_period")) {
        if (cmd.rotationPeriod() == null) {
          k.rotationPeriodSeconds = null;
          k.nextRotationTime = null;
        } else {
          k.rotationPeriodSeconds = cmd.rotationPeriod().toSeconds();
          if (k.nextRotationTime == null) k.nextRotationTime = now.plus(cmd.rotationPeriod());
        }
      }
      if (cmd.mask().contains("next_rotation_time")) {
        if (cmd.nextRotationTime() != null && k.rotationPeriodSeconds == null) {
          throw ServiceException.invalid(KeyReason.INVALID_ROTATION_PERIOD, "next_rotation_time needs a rotation_period");
        }
        k.nextRotationTime = cmd.nextRotationTime() != null ? cmd.nextRotationTime()
            : (k.rotationPeriodSeconds == null ? null : now.plusSeconds(k.rotationPeriodSeconds));
      }
      k.updateTime = now;
      catalogue.flush();
      return new KeyView(k, primaryOf(k));
    });
    changed.fire(new KeyChanged(kn.full()));
    return view;
  }

  public KeyView setPrimaryVersion(String key, int number) {
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(number);
    KeyView view = mutation(kn.full(), v -> number, () -> {
      KeyEntity k = lockKey(kn);
      KeyVersionEntity v = version(k, number);
      KeyUse.ENCRYPT.check(kn.full(), number, v.state);
      if (k.primaryVersion != number) {
        k.primaryVersion = number;
        k.updateTime = now();
        catalogue.flush();
      }
      return new KeyView(k, v);
    });
    changed.fire(new KeyChanged(kn.full()));
    return view;
  }

  public KeyVersionEntity disableVersion(String key, int number) {
    return transition(key, number, Transition.DISABLE, null);
  }

  public KeyVersionEntity enableVersion(String key, int number) {
    return transition(key, number, Transition.ENABLE, null);
  }

  /** Schedules destruction after {@code delay} (null: the configured default). */
  public KeyVersionEntity scheduleDestruction(String key, int number, Duration delay) {
    var d = config.destruction();
    Duration effective = delay == null ? d.defaultDelay() : delay;
    if (effective.compareTo(d.minDelay()) < 0 || effective.compareTo(d.maxDelay()) > 0) {
      throw ServiceException.invalid(KeyReason.INVALID_DESTROY_DELAY,
          "destruction delay must be between " + d.minDelay() + " and " + d.maxDelay());
    }
    return transition(key, number, Transition.SCHEDULE_DESTRUCTION, effective);
  }

  public KeyVersionEntity restoreVersion(String key, int number) {
    return transition(key, number, Transition.RESTORE, null);
  }

  /**
   * Marks a version COMPROMISED. If it is the primary, a new version is
   * created and made primary in the same transaction, so the key keeps an
   * ENABLED primary and new data is never protected by a revoked version.
   */
  public KeyView revokeVersion(String key, int number) {
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(number);
    KeyEntity snapshot = findKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
    KeyProtectionBackend backend = backends.forLevel(snapshot.protectionLevel);
    GeneratedKey replacement = snapshot.primaryVersion == number && !snapshot.importOnly
        ? backends.require(snapshot.protectionLevel, snapshot.algorithm, Capability.GENERATE)
            .generate(new KeySpec(snapshot.algorithm, snapshot.exportPolicy, snapshot.platformBinding()))
        : null;
    boolean[] used = {false};
    Supplier<KeyView> work = () -> mutation(kn.full(), v -> number, () -> {
      KeyEntity k = lockKey(kn);
      KeyVersionEntity v = version(k, number);
      KeyVersionState next = Transition.REVOKE.apply(v.state, false, v.compromiseTime != null);
      if (k.primaryVersion == number && k.importOnly) {
        k.primaryVersion = 0; // an import-only key cannot make a replacement: it has no primary until the next import
      } else if (k.primaryVersion == number) {
        if (replacement == null) {
          throw new ServiceException(ErrorCode.ABORTED, KeyReason.CONCURRENT_MODIFICATION,
              "the primary changed concurrently; retry", Map.of("key", kn.full()), null);
        }
        addPrimaryVersion(k, backend, replacement);
        used[0] = true;
      }
      if (next != v.state) {
        v.state = next;
        v.compromiseTime = now();
        k.updateTime = now();
      }
      catalogue.flush();
      return new KeyView(k, primaryOf(k));
    });
    KeyView view = replacement == null ? work.get() : persistOrDestroy(backend, replacement.handle(), work, kn);
    if (replacement != null && !used[0]) backend.destroy(replacement.handle());
    changed.fire(new KeyChanged(kn.full()));
    LOG.warnf("revoked version %d of key %s (COMPROMISED)", number, kn);
    return view;
  }

  private KeyVersionEntity transition(String key, int number, Transition t, Duration delay) {
    KeyName kn = KeyNames.parse(key);
    KeyNames.checkVersion(number);
    KeyVersionEntity result = mutation(kn.full(), v -> number, () -> {
      KeyEntity k = lockKey(kn);
      KeyVersionEntity v = version(k, number);
      KeyVersionState next = t.apply(v.state, k.primaryVersion == number, v.compromiseTime != null);
      if (next == v.state && t != Transition.RESTORE) return v;
      Instant now = now();
      v.state = next;
      v.destroyTime = t == Transition.SCHEDULE_DESTRUCTION ? now.plus(delay) : null;
      k.updateTime = now;
      catalogue.flush();
      return v;
    });
    changed.fire(new KeyChanged(kn.full()));
    LOG.infof("%s: version %d of key %s is now %s", t, number, kn, result.state);
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // import

  /**
   * Persists imported material as a version of a key, with its audit event in the
   * same transaction: a new version ({@code reimport} 0), or DESTROYED version
   * {@code reimport} getting its material back. The version is ENABLED; it becomes
   * primary when the key has none or {@code makePrimary}. The conditions checked
   * before the (slow) import are re-checked under the key's row lock. If anything
   * fails, the backend's new handle is destroyed (generate → persist → on failure
   * destroy) and nothing changed.
   *
   * @param stillValid run in the transaction after the key's row is locked: the caller's own
   *     re-check (the import job is still ACTIVE, under its row lock); throws to refuse
   * @throws ServiceException FAILED_PRECONDITION (KEY_VERSION_NOT_REIMPORTABLE, KEY_MATERIAL_MISMATCH,
   *     IMPORT_JOB_MISMATCH), NOT_FOUND
   */
  public VersionView importVersion(KeyName kn, int reimport, boolean makePrimary, KeyProtectionBackend backend,
      ImportedKey imported, Runnable stillValid) {
    VersionView view = persistOrDestroy(backend, imported.key().handle(),
        () -> mutation(kn.full(), v -> v.version().number, () -> {
          KeyEntity k = lockKey(kn);
          stillValid.run();
          checkImportable(k, imported.algorithm(), backend.describe().level());
          Instant now = now();
          KeyVersionEntity v;
          if (reimport == 0) {
            v = newVersion(k, backend, imported.key(), now);
            v.algorithm = imported.algorithm();
            v.imported = true;
            v.materialFingerprint = MaterialFingerprint.seal(imported.fingerprint());
            v.importJob = imported.importJob();
            v.importTime = now;
            v.duplicated = imported.duplicated();
            v = catalogue.insertNextVersion(k, v);
          } else {
            v = version(k, reimport);
            checkReimportable(kn, v, imported.algorithm(), imported.fingerprint());
            v.state = KeyVersionState.ENABLED;
            v.keyBlob = imported.key().handle().blob();
            v.publicKey = imported.key().publicKeyDer();
            v.backendId = backend.describe().id();
            v.destroyTime = null;
            v.destroyEventTime = null;
            v.importJob = imported.importJob();
            v.importTime = now;
            v.duplicated = imported.duplicated();
            v.exportPolicy = backend.exportPolicy(imported.key().handle());
            v.policyDigest = digestOrNull(backend.policyDigest(imported.key().handle()));
          }
          if (k.primaryVersion == 0 || makePrimary) k.primaryVersion = v.number;
          k.updateTime = now;
          catalogue.flush();
          return new VersionView(k, v);
        }), kn);
    LOG.infof("imported version %d of key %s (%s)%s", view.version().number, kn, imported.algorithm(),
        reimport == 0 ? "" : " again");
    return view;
  }

  /**
   * The key and, for a re-import, its version, checked as {@link #importVersion}
   * will check them under the lock: read before the material is unwrapped, so that a
   * request that cannot succeed costs no TPM work.
   */
  public VersionView checkImport(KeyName kn, int reimport, KeyAlgorithm algorithm, ProtectionLevel jobLevel) {
    return inNewTransaction(() -> {
      KeyEntity k = catalogue.findKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
      checkImportable(k, algorithm, jobLevel);
      KeyVersionEntity v = null;
      if (reimport != 0) {
        v = version(k, reimport);
        checkReimportable(kn, v, algorithm, null);
      }
      return new VersionView(k, v);
    });
  }

  private static void checkImportable(KeyEntity k, KeyAlgorithm algorithm, ProtectionLevel jobLevel) {
    if (!k.purpose.allows(algorithm)) {
      throw ServiceException.invalid(KeyReason.INVALID_ALGORITHM,
          "algorithm " + algorithm + " does not fit purpose " + k.purpose + " of key \"" + k.fullName() + "\"");
    }
    if (k.protectionLevel != jobLevel) {
      throw ServiceException.failedPrecondition(KeyReason.IMPORT_JOB_MISMATCH,
          "the import job is of protection level " + jobLevel + ", key \"" + k.fullName() + "\" of "
              + k.protectionLevel).with("key", k.fullName());
    }
  }

  /** @param fingerprint null: check everything but the material */
  private static void checkReimportable(KeyName kn, KeyVersionEntity v, KeyAlgorithm algorithm, byte[] fingerprint) {
    if (v.state != KeyVersionState.DESTROYED || !v.imported) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_VERSION_NOT_REIMPORTABLE,
          "version " + v.number + " of key \"" + kn + "\" is " + v.state + (v.imported ? "" : " and was not imported")
              + "; only a DESTROYED imported version can be re-imported")
          .with("key", kn.full()).with("version", Integer.toString(v.number));
    }
    if (v.compromiseTime != null) {
      // a revoked version stays out of use for good (key-lifecycle.md), destroyed or not
      throw ServiceException.failedPrecondition(KeyReason.KEY_VERSION_NOT_REIMPORTABLE,
          "version " + v.number + " of key \"" + kn + "\" was revoked (COMPROMISED) before it was destroyed;"
              + " its material cannot come back")
          .with("key", kn.full()).with("version", Integer.toString(v.number));
    }
    if (v.algorithm != algorithm || (fingerprint != null
        && !MaterialFingerprint.matches(v.materialFingerprint, fingerprint))) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_MATERIAL_MISMATCH,
          "the material differs from what version " + v.number + " of key \"" + kn + "\" held; a destroyed"
              + " version can be re-imported with the same material only")
          .with("key", kn.full()).with("version", Integer.toString(v.number));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // scheduled destruction

  /**
   * Destroys versions whose scheduled time has come: in one transaction the
   * blob is removed (the row stays as a tombstone); after commit the backend
   * drops whatever it holds. Rows locked by another replica are skipped.
   *
   * @return how many versions this call destroyed
   */
  public int destroyDueVersions(int limit) {
    List<Object[]> destroyed = inNewTransaction(() -> {
      List<Long> ids = catalogue.claimDueForDestruction(now(), limit);
      List<Object[]> out = new java.util.ArrayList<>();
      for (long id : ids) {
        KeyVersionEntity v = catalogue.reloadVersion(id);
        KeyEntity k = catalogue.findKey(v.keyId).orElseThrow();
        v.state = Transition.DESTROY.apply(v.state, k.primaryVersion == v.number, v.compromiseTime != null);
        KeyHandle handle = v.handle();
        v.keyBlob = null; // the public key stays with the tombstone: it is not secret
        v.destroyEventTime = now();
        k.updateTime = v.destroyEventTime;
        out.add(new Object[] {k.fullName(), v.number, v.protectionLevel, handle});
        audit.recordInTransaction(outbox, CallInfo.system("scheduler/DestroyKeyVersion"), k.fullName(), v.number);
      }
      return out;
    });
    for (Object[] d : destroyed) {
      String key = (String) d[0];
      changed.fire(new KeyChanged(key));
      try {
        backends.forLevel((ProtectionLevel) d[2]).destroy((KeyHandle) d[3]);
      } catch (RuntimeException e) {
        // the blob is already gone from the catalogue; what the backend held is unreachable
        LOG.warnf(e, "backend cleanup after destroying version %d of key %s failed", (Integer) d[1], key);
      }
      LOG.infof("destroyed the material of version %d of key %s", (Integer) d[1], key);
    }
    return destroyed.size();
  }

  // ---------------------------------------------------------------------------------------------
  // helpers

  private KeyVersionEntity addPrimaryVersion(KeyEntity k, KeyProtectionBackend backend, GeneratedKey material) {
    Instant now = now();
    KeyVersionEntity v = catalogue.insertNextVersion(k, newVersion(k, backend, material, now));
    k.primaryVersion = v.number;
    k.updateTime = now;
    catalogue.flush();
    return v;
  }

  /** A new ENABLED version of {@code k} holding {@code material}, not yet in the catalogue (no key id, no number). */
  private KeyVersionEntity newVersion(KeyEntity k, KeyProtectionBackend backend, GeneratedKey material, Instant now) {
    KeyVersionEntity v = new KeyVersionEntity();
    v.state = KeyVersionState.ENABLED;
    v.algorithm = k.algorithm;
    v.protectionLevel = k.protectionLevel;
    v.backendId = backend.describe().id();
    v.keyBlob = material.handle().blob();
    v.publicKey = material.publicKeyDer();
    v.createTime = now;
    v.exportPolicy = backend.exportPolicy(material.handle());
    v.policyDigest = digestOrNull(backend.policyDigest(material.handle()));
    v.platformBinding(backend.platformBinding(material.handle()).orElse(null));
    return v;
  }

  private static byte[] digestOrNull(byte[] d) { return d == null || d.length == 0 ? null : d; }

  /** Runs the persisting step; if it fails, destroys the freshly generated material and rethrows. */
  private <T> T persistOrDestroy(KeyProtectionBackend backend, KeyHandle handle, Supplier<T> persist, KeyName kn) {
    try {
      return persist.get();
    } catch (RuntimeException e) {
      try {
        backend.destroy(handle);
      } catch (RuntimeException destroyFailure) {
        e.addSuppressed(destroyFailure);
      }
      if (KeyCatalogue.isNameConflict(e)) throw alreadyExists(kn);
      throw e;
    } finally {
      changed.fire(new KeyChanged(kn.full()));
    }
  }

  /** The key, its row locked until the transaction ends. */
  private KeyEntity lockKey(KeyName kn) {
    return catalogue.lockKey(kn).orElseThrow(() -> KeyErrors.keyNotFound(kn.full()));
  }

  /** The key, read in a transaction of its own. */
  private Optional<KeyEntity> findKey(KeyName kn) {
    return inNewTransaction(() -> catalogue.findKey(kn));
  }

  /** The key's primary version, null for a key that has none (an import-only key before its first import). */
  private KeyVersionEntity primaryOf(KeyEntity k) {
    return k.primaryVersion == 0 ? null : version(k, k.primaryVersion);
  }

  private static ServiceException importOnly(KeyName kn) {
    return ServiceException.failedPrecondition(KeyReason.KEY_IMPORT_ONLY,
        "key \"" + kn + "\" is import-only: its versions come from ImportKeyVersion").with("key", kn.full());
  }

  private KeyVersionEntity version(KeyEntity k, int number) {
    return catalogue.findVersion(k.id, number)
        .orElseThrow(() -> KeyErrors.versionNotFound(k.fullName(), number));
  }

  private void checkRotationPeriod(Duration period) {
    if (period == null) return;
    Duration min = config.rotation().minPeriod();
    if (period.compareTo(min) < 0 || period.compareTo(Duration.ofDays(36500)) > 0) {
      throw ServiceException.invalid(KeyReason.INVALID_ROTATION_PERIOD,
          "rotation_period must be at least " + min + " and at most 100 years");
    }
  }

  private static ServiceException alreadyExists(KeyName kn) {
    return new ServiceException(ErrorCode.ALREADY_EXISTS, KeyReason.KEY_ALREADY_EXISTS,
        "key \"" + kn + "\" already exists", Map.of("key", kn.full()), null);
  }

  /**
   * Runs a state change in its own transaction and writes its audit event in
   * that same transaction: the change and its record commit together or not
   * at all. A null result means nothing changed and writes no event.
   */
  private <T> T mutation(String key, java.util.function.ToIntFunction<T> version, Supplier<T> work) {
    CallInfo call = CallInfo.current();
    return mutation(call != null ? call : CallInfo.system("internal"), key, version, work);
  }

  private <T> T mutation(CallInfo call, String key, java.util.function.ToIntFunction<T> version, Supplier<T> work) {
    T result = inNewTransaction(() -> {
      T r = work.get();
      if (r != null) audit.recordInTransaction(outbox, call, key, version.applyAsInt(r));
      return r;
    });
    if (result != null) audit.committed(call);
    return result;
  }

  private static <T> T inNewTransaction(Supplier<T> work) {
    return QuarkusTransaction.requiringNew().call(work::get);
  }

  private static Instant now() {
    // PostgreSQL keeps microseconds; truncating keeps what we return equal to what we store.
    return Instant.now().truncatedTo(ChronoUnit.MICROS);
  }
}

package io.tpmkms.key.imports;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.tpmkms.key.KmsConfig;
import io.tpmkms.key.backend.BackendRegistry;
import io.tpmkms.key.catalogue.ImportJobCatalogue;
import io.tpmkms.key.catalogue.ImportJobEntity;
import io.tpmkms.key.catalogue.ImportJobEntity.State;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.lifecycle.KeyLifecycleService;
import io.tpmkms.key.lifecycle.KeyLifecycleService.ImportedKey;
import io.tpmkms.key.lifecycle.KeyLifecycleService.VersionView;
import io.tpmkms.key.lifecycle.KeyNames;
import io.tpmkms.key.lifecycle.KeyNames.KeyName;
import io.tpmkms.key.lifecycle.MaterialFingerprint;
import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.tpm.Duplication;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;
import java.nio.charset.StandardCharsets;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * Import jobs and ImportKeyVersion (docs/import-export.md).
 *
 * <p><b>Jobs.</b> CreateImportJob stores a PENDING_GENERATION row (with its audit
 * event, in one transaction) and hands the RSA wrapping key's generation to this
 * service's own worker threads: on a TPM it takes up to seconds. The generated key
 * is installed by a conditional update under the job's row lock ({@code FOR UPDATE
 * SKIP LOCKED}, still PENDING_GENERATION): exactly one wrapping key is installed
 * per job; a key that lost the race is destroyed again. If a replica dies between
 * insert and generation, {@link #regenerateLost} (the {@link ImportScheduler})
 * generates it once the job is {@code tpmkms.imports.pending-grace} old. ACTIVE jobs
 * expire {@code tpmkms.imports.job-lifetime} after generation: {@link #expireDue}
 * marks them EXPIRED, deletes the blob and destroys what the backend holds.
 *
 * <p><b>Attestation of TPM jobs</b> is made once, at generation: TPM2_Certify of the
 * wrapping key with qualifying data SHA-256("tpmkms/import-job/v1" 0x00 "ns/job_id"),
 * stored with the job and returned by every Get/List. A fresh statement per Get
 * would cost a TPM load and certify per job listed, and GetImportJob has no nonce
 * to make it fresh for the caller; the wrapping key never changes, so the
 * statement made at generation says all there is.
 *
 * <p><b>Import.</b> The wrapped key is split by the job's method, the RSA-OAEP part
 * is decrypted by the job's backend (inside the TPM for TPM jobs), the AES-KWP part
 * unwrapped here, the material parsed and checked against the declared algorithm,
 * imported into the key's backend and persisted as a version with its audit event
 * in one transaction (on failure the new handle is destroyed). Every plaintext
 * array is zeroed in a finally block; none is logged. Each bad input fails with a
 * stable reason before anything is written.
 *
 * <p>Direct (plain RSA-OAEP) methods carry symmetric material only: an asymmetric
 * algorithm with such a method is INVALID_IMPORT_METHOD (the request, not the blob,
 * is wrong).
 *
 * <p>Threading: safe for concurrent use; state is in the database.
 */
@ApplicationScoped
public class ImportService {
  private static final Logger LOG = Logger.getLogger(ImportService.class);
  static final Pattern JOB_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  static final Duration MAX_WAIT = Duration.ofSeconds(60);
  /** Longest wrapped_key accepted (docs/api.md). */
  static final int MAX_WRAPPED_KEY = 64 * 1024;
  private static final int BATCH = 50;

  private final ImportJobCatalogue jobs;
  private final KeyLifecycleService lifecycle;
  private final BackendRegistry backends;
  private final KmsConfig config;
  private final EntityManager outbox;
  private final AuditLog audit;
  private final Function<KeyAttestation, byte[]> attestationEncoder;
  private final ExecutorService generators = Executors.newFixedThreadPool(2, r -> {
    Thread t = new Thread(r, "import-job-keygen");
    t.setDaemon(true);
    return t;
  });

  public ImportService(ImportJobCatalogue jobs, KeyLifecycleService lifecycle, BackendRegistry backends,
      KmsConfig config, EntityManager outbox, AuditLog audit) {
    this.jobs = jobs;
    this.lifecycle = lifecycle;
    this.backends = backends;
    this.config = config;
    this.outbox = outbox;
    this.audit = audit;
    this.attestationEncoder = AttestationEncoding::encode;
  }

  @PreDestroy
  void stop() {
    generators.shutdownNow();
  }

  /** A parsed, valid import job name "namespace/job_id". */
  public record JobName(String namespace, String jobId) {
    public String full() { return namespace + "/" + jobId; }
    public String auditName() { return namespace + "/importJobs/" + jobId; }
    @Override public String toString() { return full(); }
  }

  /** What CreateImportJob asks for; null level: the server default; null wait: return at once. */
  public record CreateJobCommand(String namespace, String jobId, ImportWrapping.Method method,
      ProtectionLevel protectionLevel, Duration waitFor) {}

  /**
   * What ImportKeyVersion asks for. {@code version} 0: a new version. {@code duplication}: for
   * TPM2_DUPLICATION jobs, instead of {@code wrappedKey}.
   */
  public record ImportCommand(String key, String importJob, KeyAlgorithm algorithm, byte[] wrappedKey,
      long version, boolean makePrimary, DuplicationIn duplication) {
    public ImportCommand(String key, String importJob, KeyAlgorithm algorithm, byte[] wrappedKey, long version,
        boolean makePrimary) {
      this(key, importJob, algorithm, wrappedKey, version, makePrimary, null);
    }
  }

  /** A duplication blob as ImportKeyVersion carries it (ADR 0025); the transfer auth is secret. */
  public record DuplicationIn(byte[] publicArea, byte[] duplicate, byte[] encryptedSeed, byte[] transferAuth,
      byte[] authorityName) {}

  // ---------------------------------------------------------------------------------------------
  // jobs

  public static JobName jobName(String namespace, String jobId) {
    if (namespace == null || !KeyNames.NAMESPACE.matcher(namespace).matches()) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_JOB_NAME,
          "import job namespace must match " + KeyNames.NAMESPACE.pattern());
    }
    if (jobId == null || !JOB_ID.matcher(jobId).matches()) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_JOB_NAME,
          "import job id must match " + JOB_ID.pattern() + " (1-128 characters)");
    }
    return new JobName(namespace, jobId);
  }

  public static JobName parseJobName(String name) {
    int slash = name == null ? -1 : name.indexOf('/');
    if (slash < 0) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_JOB_NAME, "import job must be \"namespace/job_id\"");
    }
    return jobName(name.substring(0, slash), name.substring(slash + 1));
  }

  /**
   * Creates a job and starts generating its wrapping key; waits up to
   * {@code wait} for it and returns the job as it is then.
   *
   * @throws ServiceException INVALID_ARGUMENT (INVALID_IMPORT_JOB_NAME, INVALID_IMPORT_METHOD,
   *     INVALID_REQUEST), ALREADY_EXISTS (IMPORT_JOB_ALREADY_EXISTS), UNIMPLEMENTED (the level cannot make
   *     the method's wrapping key: CAPABILITY_UNAVAILABLE, PROTECTION_LEVEL_UNAVAILABLE)
   */
  public ImportJobEntity createJob(CreateJobCommand cmd) {
    JobName jn = jobName(cmd.namespace(), cmd.jobId());
    if (cmd.method() == null) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "import_method is required");
    }
    if (cmd.waitFor() != null && cmd.waitFor().compareTo(MAX_WAIT) > 0) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "wait must be at most " + MAX_WAIT.toSeconds() + " s");
    }
    ProtectionLevel level = backends.resolve(cmd.protectionLevel());
    KeyProtectionBackend backend;
    if (cmd.method().duplication()) {
      backend = backends.forLevel(level);
      if (!(backend instanceof TpmKeyProtectionBackend)) {
        throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD,
            "import method TPM2_DUPLICATION needs protection level TPM (duplication blobs are imported by a TPM)");
      }
    } else {
      KeyAlgorithm wrapping = cmd.method().wrappingKeyAlgorithm();
      backend = backends.require(level, wrapping, Capability.GENERATE);
      backends.require(level, wrapping, Capability.ASYMMETRIC_DECRYPT);
    }
    if (inNewTransaction(() -> jobs.find(jn.namespace(), jn.jobId())).isPresent()) throw jobExists(jn);

    ImportJobEntity created;
    try {
      created = mutation(jn.auditName(), () -> {
        ImportJobEntity j = new ImportJobEntity();
        j.namespace = jn.namespace();
        j.jobId = jn.jobId();
        j.method = cmd.method();
        j.protectionLevel = level;
        j.state = State.PENDING_GENERATION;
        j.backendId = backend.describe().id();
        j.lifetimeSeconds = Math.max(1, config.imports().jobLifetime().toSeconds());
        j.createTime = now();
        jobs.insert(j);
        return j;
      });
    } catch (RuntimeException e) {
      if (ImportJobCatalogue.isNameConflict(e)) throw jobExists(jn);
      throw e;
    }
    LOG.infof("created import job %s (%s, %s)", jn, cmd.method(), level);
    long id = created.id;
    CompletableFuture<Void> generated = CompletableFuture.runAsync(() -> generate(id), generators);
    if (cmd.waitFor() != null && !cmd.waitFor().isZero()) {
      try {
        generated.get(cmd.waitFor().toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException | ExecutionException e) {
        // the job is returned as it is; the scheduler retries a failed generation
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    return getJob(jn.full());
  }

  public ImportJobEntity getJob(String name) {
    JobName jn = parseJobName(name);
    return inNewTransaction(() -> jobs.find(jn.namespace(), jn.jobId())).orElseThrow(() -> jobNotFound(jn.full()));
  }

  /** A page of a namespace's jobs ordered by job id, after {@code afterJobId} ("" from the start). */
  public List<ImportJobEntity> listJobs(String namespace, String afterJobId, int limit) {
    if (namespace == null || !KeyNames.NAMESPACE.matcher(namespace).matches()) {
      throw ServiceException.invalid(KeyReason.INVALID_NAMESPACE,
          "namespace must match " + KeyNames.NAMESPACE.pattern() + " (1-63 characters)");
    }
    return inNewTransaction(() -> jobs.page(namespace, afterJobId, limit));
  }

  /**
   * Generates the wrapping key of a PENDING_GENERATION job and installs it unless
   * another worker or replica did first (then the new key is destroyed again).
   *
   * @return whether this call installed the key
   */
  public boolean generate(long jobId) {
    ImportJobEntity snapshot = inNewTransaction(() -> jobs.find(jobId)).orElse(null);
    if (snapshot == null || snapshot.state != State.PENDING_GENERATION) return false;
    JobName jn = new JobName(snapshot.namespace, snapshot.jobId);
    KeyProtectionBackend backend = backends.forLevel(snapshot.protectionLevel);
    if (snapshot.method.duplication()) return installStorageRoot(jobId, jn, (TpmKeyProtectionBackend) backend);
    GeneratedKey key = backend.generate(new KeySpec(snapshot.method.wrappingKeyAlgorithm()));
    boolean installed = false;
    try {
      byte[] attestation = backend.describe().supports(Capability.CERTIFY)
          ? attestationEncoder.apply(backend.certify(key.handle(), qualifyingData(jn))) : null;
      installed = Boolean.TRUE.equals(mutation(CallInfo.system("import/GenerateWrappingKey"), jn.auditName(), () -> {
        Optional<ImportJobEntity> claimed = jobs.claimPending(jobId);
        if (claimed.isEmpty()) return null;
        ImportJobEntity j = claimed.get();
        Instant now = now();
        j.wrappingKeyBlob = key.handle().blob();
        j.publicKey = key.publicKeyDer();
        j.attestation = attestation;
        j.generateTime = now;
        j.expireTime = now.plusSeconds(j.lifetimeSeconds);
        j.state = State.ACTIVE;
        jobs.flush();
        return Boolean.TRUE;
      }));
    } finally {
      if (!installed) destroyQuietly(backend, key.handle(), jn);
    }
    if (installed) LOG.infof("import job %s is ACTIVE", jn);
    return installed;
  }

  /**
   * A TPM2_DUPLICATION job's "wrapping key" is the TPM's SRK (no key to generate: it is derived from
   * the owner seed): the job stores the SRK's TPMT_PUBLIC in the blob column (so the ACTIVE
   * invariant holds; nothing is destroyed at expiry), its public key and a TPM2_Certify of it with
   * the job's qualifying data.
   */
  private boolean installStorageRoot(long jobId, JobName jn, TpmKeyProtectionBackend tpm) {
    KeyAttestation srk = tpm.certifySrk(qualifyingData(jn));
    byte[] attestation = attestationEncoder.apply(srk);
    byte[] spki = io.tpmkms.protection.tpm.KeyAttestationVerifier.spkiOf(srk.certifiedTpmPublic());
    boolean installed = Boolean.TRUE.equals(mutation(CallInfo.system("import/GenerateWrappingKey"), jn.auditName(), () -> {
      Optional<ImportJobEntity> claimed = jobs.claimPending(jobId);
      if (claimed.isEmpty()) return null;
      ImportJobEntity j = claimed.get();
      Instant now = now();
      j.wrappingKeyBlob = srk.certifiedTpmPublic();
      j.publicKey = spki;
      j.attestation = attestation;
      j.generateTime = now;
      j.expireTime = now.plusSeconds(j.lifetimeSeconds);
      j.state = State.ACTIVE;
      jobs.flush();
      return Boolean.TRUE;
    }));
    if (installed) LOG.infof("import job %s (TPM2_DUPLICATION to the SRK) is ACTIVE", jn);
    return installed;
  }

  /** Generates the wrapping keys of jobs whose generation was lost (still pending after the grace). */
  public int regenerateLost() {
    Instant before = now().minus(config.imports().pendingGrace());
    int done = 0;
    for (long id : inNewTransaction(() -> jobs.pendingSince(before, BATCH))) {
      try {
        if (generate(id)) done++;
      } catch (RuntimeException e) {
        LOG.warnf(e, "generating the wrapping key of import job id %d failed; the next pass retries", id);
      }
    }
    return done;
  }

  /**
   * Expires ACTIVE jobs whose time has come (and jobs whose generation has failed
   * for a whole lifetime): in one transaction each is marked
   * EXPIRED and its blob deleted (with its audit event); after commit the backend
   * drops whatever it holds. Rows locked by another replica are skipped.
   *
   * @return how many jobs this call expired
   */
  public int expireDue() {
    CallInfo call = CallInfo.system("scheduler/ExpireImportJob");
    List<Object[]> expired = inNewTransaction(() -> {
      List<Object[]> out = new ArrayList<>();
      Instant now = now();
      for (ImportJobEntity j : jobs.claimDueForExpiry(now, BATCH)) {
        out.add(new Object[] {j.fullName(), j.protectionLevel, j.method.duplication() ? null : j.wrappingKey()});
        j.state = State.EXPIRED;
        j.wrappingKeyBlob = null;
        j.expireEventTime = now;
        audit.recordInTransaction(outbox, call, j.auditName(), 0);
      }
      jobs.flush();
      return out;
    });
    for (Object[] e : expired) {
      if (e[2] == null) {
        LOG.infof("import job %s expired (nothing to destroy: no wrapping key, or the SRK)", e[0]);
        continue;
      }
      try {
        backends.forLevel((ProtectionLevel) e[1]).destroy((KeyHandle) e[2]);
      } catch (RuntimeException ex) {
        // the blob is gone from the table already; what the backend held is unreachable
        LOG.warnf(ex, "backend cleanup after expiring import job %s failed", e[0]);
      }
      LOG.infof("import job %s expired; its wrapping key is destroyed", e[0]);
    }
    return expired.size();
  }

  // ---------------------------------------------------------------------------------------------
  // import

  /**
   * Unwraps the material with the job and makes it a version of the key (see the class comment).
   *
   * @throws ServiceException INVALID_ARGUMENT (INVALID_KEY_NAME, INVALID_IMPORT_JOB_NAME, INVALID_ALGORITHM,
   *     INVALID_IMPORT_METHOD, INVALID_VERSION, WRAPPED_KEY_INVALID, KEY_MATERIAL_INVALID), NOT_FOUND
   *     (KEY_NOT_FOUND, IMPORT_JOB_NOT_FOUND, KEY_VERSION_NOT_FOUND), FAILED_PRECONDITION (IMPORT_JOB_EXPIRED,
   *     IMPORT_JOB_NOT_ACTIVE, IMPORT_JOB_MISMATCH, KEY_VERSION_NOT_REIMPORTABLE, KEY_MATERIAL_MISMATCH),
   *     UNIMPLEMENTED (the level cannot import the algorithm)
   */
  public VersionView importKeyVersion(ImportCommand cmd) {
    KeyName kn = KeyNames.parse(cmd.key());
    JobName jn = parseJobName(cmd.importJob());
    if (cmd.algorithm() == null) {
      throw ServiceException.invalid(KeyReason.INVALID_ALGORITHM, "algorithm is required");
    }
    if (cmd.version() < 0 || cmd.version() > Integer.MAX_VALUE) {
      throw ServiceException.invalid(KeyReason.INVALID_VERSION, "version out of range");
    }
    int reimport = (int) cmd.version();
    if (cmd.duplication() != null) {
      return importDuplication(cmd, kn, jn, reimport);
    }
    if (cmd.wrappedKey() == null || cmd.wrappedKey().length == 0) {
      throw ServiceException.invalid(KeyReason.WRAPPED_KEY_INVALID, "wrapped_key is required");
    }
    if (cmd.wrappedKey().length > MAX_WRAPPED_KEY) {
      // the largest real one (RSA-4096 PKCS#8 under RSA-4096 OAEP + KWP) is under 3 KiB
      throw ServiceException.invalid(KeyReason.WRAPPED_KEY_INVALID,
          "wrapped_key is " + cmd.wrappedKey().length + " bytes; at most " + MAX_WRAPPED_KEY);
    }
    ImportJobEntity job = inNewTransaction(() -> jobs.find(jn.namespace(), jn.jobId()))
        .orElseThrow(() -> jobNotFound(jn.full()));
    checkJobUsable(job, kn, jn);
    if (job.method.duplication()) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "import job \"" + jn + "\" takes duplication"
          + " blobs (method TPM2_DUPLICATION): send `duplication`, not wrapped_key");
    }
    KeyAlgorithm alg = cmd.algorithm();
    VersionView checked = lifecycle.checkImport(kn, reimport, alg, job.protectionLevel);
    if (!job.method.aesKeyWrap() && alg.isAsymmetric()) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "import method " + job.method
          + " wraps symmetric material only; use an _AES_256 method for " + alg);
    }
    KeyProtectionBackend target = backends.require(checked.key().protectionLevel, alg, Capability.IMPORT);
    KeyProtectionBackend unwrapper = backends.forLevel(job.protectionLevel);
    io.tpmkms.protection.ExportPolicy exportPolicy = checked.key().exportPolicy;
    if (exportPolicy == io.tpmkms.protection.ExportPolicy.DUPLICABLE && target instanceof TpmKeyProtectionBackend) {
      throw ServiceException.failedPrecondition(KeyReason.EXPORT_POLICY_MISMATCH, "key \"" + kn + "\" is DUPLICABLE:"
          + " its TPM versions come from generation or from duplication (an import job with method TPM2_DUPLICATION);"
          + " RSA-wrapped material makes a non-duplicable TPM object").with("key", kn.full());
    }

    ImportWrapping.Parts parts = wrappedKeyInvalid(() -> ImportWrapping.split(job.method, cmd.wrappedKey()));
    byte[] oaepPlain = null;
    byte[] material = null;
    try {
      oaepPlain = wrappedKeyInvalid(() -> withWrappingKey(jn, () -> unwrapper.asymmetricDecrypt(job.wrappingKey(),
          parts.oaep())));
      byte[] first = oaepPlain;
      material = job.method.aesKeyWrap() ? wrappedKeyInvalid(() -> ImportWrapping.unwrapKwp(first, parts.kwp()))
          : oaepPlain;
      try (KeyMaterial m = parse(alg, material)) {
        byte[] fingerprint = m.fingerprint();
        if (reimport != 0 && !MaterialFingerprint.matches(checked.version().materialFingerprint, fingerprint)) {
          throw ServiceException.failedPrecondition(KeyReason.KEY_MATERIAL_MISMATCH,
              "the material differs from what version " + reimport + " of key \"" + kn + "\" held; a destroyed"
                  + " version can be re-imported with the same material only")
              .with("key", kn.full()).with("version", Integer.toString(reimport));
        }
        GeneratedKey imported = target.importKey(new KeySpec(alg, exportPolicy, checked.key().platformBinding()), m);
        return lifecycle.importVersion(kn, reimport, cmd.makePrimary(), target,
            new ImportedKey(alg, imported, fingerprint, jn.full()), () -> requireStillActive(jn));
      }
    } catch (ServiceException e) {
      if (KeyReason.IMPORT_JOB_EXPIRED.name().equals(e.reason())) {
        // the job expired while this call unwrapped with it: the unwrap loaded its wrapping key again
        destroyQuietly(unwrapper, job.wrappingKey(), jn);
      }
      throw e;
    } finally {
      if (oaepPlain != null) Arrays.fill(oaepPlain, (byte) 0);
      if (material != null) Arrays.fill(material, (byte) 0);
      Arrays.fill(parts.oaep(), (byte) 0);
      Arrays.fill(parts.kwp(), (byte) 0);
    }
  }

  /** Longest part of a duplication blob accepted (a TPM2B is at most 64 KiB; real ones are under 1 KiB). */
  static final int MAX_DUPLICATION_PART = 4096;

  /**
   * ImportKeyVersion with a duplication blob (job method TPM2_DUPLICATION): the TPM imports it
   * under its SRK (checking the outer wrapper and the key's name) and the auth value is changed
   * from the transfer auth to the service's own; the version is DUPLICATED, its export policy read
   * from the object. The fingerprint of such a version is SHA-256 of its public area (there is no
   * material to hash), so a DESTROYED one can be re-imported from the same object only.
   */
  private VersionView importDuplication(ImportCommand cmd, KeyName kn, JobName jn, int reimport) {
    DuplicationIn d = cmd.duplication();
    if (cmd.wrappedKey() != null && cmd.wrappedKey().length > 0) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "give either wrapped_key or duplication, not both");
    }
    for (byte[] part : new byte[][] {d.publicArea(), d.duplicate(), d.encryptedSeed()}) {
      if (part == null || part.length < 3 || part.length > MAX_DUPLICATION_PART) {
        throw ServiceException.invalid(KeyReason.DUPLICATION_BLOB_INVALID, "duplication needs public_area, duplicate"
            + " and encrypted_seed, each a TPM2B of at most " + MAX_DUPLICATION_PART + " bytes");
      }
    }
    if (d.transferAuth() != null && d.transferAuth().length > 32) {
      throw ServiceException.invalid(KeyReason.DUPLICATION_BLOB_INVALID, "transfer_auth is at most 32 bytes");
    }
    if (d.authorityName() != null && d.authorityName().length != 0 && d.authorityName().length != 34) {
      throw ServiceException.invalid(KeyReason.DUPLICATION_BLOB_INVALID, "authority_name is a 34-byte TPM name");
    }
    ImportJobEntity job = inNewTransaction(() -> jobs.find(jn.namespace(), jn.jobId()))
        .orElseThrow(() -> jobNotFound(jn.full()));
    checkJobUsable(job, kn, jn);
    if (!job.method.duplication()) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "import job \"" + jn + "\" unwraps "
          + job.method + " wrapped keys; duplication blobs need a job with method TPM2_DUPLICATION");
    }
    KeyAlgorithm alg = cmd.algorithm();
    VersionView checked = lifecycle.checkImport(kn, reimport, alg, job.protectionLevel);
    KeyProtectionBackend target = backends.require(checked.key().protectionLevel, alg, Capability.IMPORT);
    if (!(target instanceof TpmKeyProtectionBackend tpm)) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "duplication blobs import into TPM keys only");
    }
    if (checked.key().exportPolicy != io.tpmkms.protection.ExportPolicy.DUPLICABLE) {
      // a duplicated object could leave its source TPM, so its policy allows duplication: it may leave this one too
      throw ServiceException.failedPrecondition(KeyReason.EXPORT_POLICY_MISMATCH, "key \"" + kn + "\" is NON_EXPORTABLE;"
          + " a duplicated object stays duplicable (by its own policy), so it goes only into a key created with"
          + " export_policy DUPLICABLE").with("key", kn.full());
    }
    byte[] fingerprint;
    try {
      fingerprint = java.security.MessageDigest.getInstance("SHA-256").digest(d.publicArea());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    if (reimport != 0 && !MaterialFingerprint.matches(checked.version().materialFingerprint, fingerprint)) {
      throw ServiceException.failedPrecondition(KeyReason.KEY_MATERIAL_MISMATCH,
          "the duplicated object differs from what version " + reimport + " of key \"" + kn + "\" held")
          .with("key", kn.full()).with("version", Integer.toString(reimport));
    }
    byte[] transfer = d.transferAuth() == null ? new byte[0] : d.transferAuth().clone();
    try {
      GeneratedKey imported;
      try {
        imported = tpm.importDuplicate(alg, new Duplication(d.publicArea(), d.duplicate(), d.encryptedSeed(),
            d.authorityName() == null ? new byte[0] : d.authorityName()), transfer);
      } catch (BackendException e) {
        if (e.kind() != BackendException.Kind.INVALID_INPUT) throw e;
        throw new ServiceException(ErrorCode.INVALID_ARGUMENT, KeyReason.DUPLICATION_BLOB_INVALID,
            e.getMessage(), Map.of(), e);
      }
      return lifecycle.importVersion(kn, reimport, cmd.makePrimary(), target,
          new ImportedKey(alg, imported, fingerprint, jn.full(), true), () -> requireStillActive(jn));
    } finally {
      Arrays.fill(transfer, (byte) 0);
      if (d.transferAuth() != null) Arrays.fill(d.transferAuth(), (byte) 0);
    }
  }

  private void checkJobUsable(ImportJobEntity job, KeyName kn, JobName jn) {
    if (!job.namespace.equals(kn.namespace())) {
      throw ServiceException.failedPrecondition(KeyReason.IMPORT_JOB_MISMATCH,
          "import job \"" + jn + "\" is in another namespace than key \"" + kn + "\"")
          .with("key", kn.full()).with("import_job", jn.full());
    }
    if (job.state == State.EXPIRED || (job.state == State.ACTIVE && !job.expireTime.isAfter(now()))) {
      throw ServiceException.failedPrecondition(KeyReason.IMPORT_JOB_EXPIRED,
          "import job \"" + jn + "\" has expired; create a new one").with("import_job", jn.full());
    }
    if (job.state != State.ACTIVE) {
      throw ServiceException.failedPrecondition(KeyReason.IMPORT_JOB_NOT_ACTIVE,
          "import job \"" + jn + "\" is still " + job.state + "; retry when it is ACTIVE")
          .with("import_job", jn.full());
    }
  }

  /**
   * In the import's transaction: the job is still ACTIVE and unexpired, its row locked until
   * commit, so the expiry pass (which skips locked rows) cannot expire it under a committing import.
   */
  private void requireStillActive(JobName jn) {
    ImportJobEntity j = jobs.lock(jn.namespace(), jn.jobId()).orElseThrow(() -> jobNotFound(jn.full()));
    if (j.state != State.ACTIVE || !j.expireTime.isAfter(now())) {
      throw ServiceException.failedPrecondition(KeyReason.IMPORT_JOB_EXPIRED,
          "import job \"" + jn + "\" expired during the import; create a new one").with("import_job", jn.full());
    }
  }

  private static KeyMaterial parse(KeyAlgorithm alg, byte[] material) {
    try {
      return KeyMaterial.parse(alg, material);
    } catch (BackendException e) {
      if (e.kind() != BackendException.Kind.INVALID_INPUT) throw e;
      throw new ServiceException(ErrorCode.INVALID_ARGUMENT, KeyReason.KEY_MATERIAL_INVALID,
          "the unwrapped key material is not a valid " + alg + " key: " + e.getMessage(), Map.of(), e);
    }
  }

  /**
   * Runs a step with the job's wrapping key: a blob the backend cannot use (another root seed,
   * another TPM) is the job's problem, not a key version's.
   */
  private static <T> T withWrappingKey(JobName jn, Supplier<T> step) {
    try {
      return step.get();
    } catch (BackendException e) {
      if (e.kind() != BackendException.Kind.KEY_INVALID) throw e;
      throw new ServiceException(ErrorCode.FAILED_PRECONDITION, KeyReason.KEY_MATERIAL_UNUSABLE,
          "the wrapping key of import job \"" + jn + "\" cannot be used here (its blob was made under another root"
              + " seed or TPM); create a new import job", Map.of("import_job", jn.full()), e);
    }
  }

  /** Runs an unwrapping step; its INVALID_INPUT (bad length, OAEP or KWP failure) becomes WRAPPED_KEY_INVALID. */
  private static <T> T wrappedKeyInvalid(Supplier<T> step) {
    try {
      return step.get();
    } catch (BackendException e) {
      if (e.kind() != BackendException.Kind.INVALID_INPUT) throw e;
      // vague to the caller (which step failed says little an attacker could use, but says it anyway in the log)
      LOG.debugf("wrapped key rejected: %s", e.getMessage());
      throw new ServiceException(ErrorCode.INVALID_ARGUMENT, KeyReason.WRAPPED_KEY_INVALID,
          "the wrapped key does not unwrap with this import job (wrong length, wrong wrapping key, or corrupted)",
          Map.of(), e);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // helpers

  static byte[] qualifyingData(JobName jn) {
    return io.tpmkms.protection.ImportWrapping.jobAttestationNonce(jn.full());
  }

  private static void destroyQuietly(KeyProtectionBackend backend, KeyHandle handle, JobName jn) {
    try {
      backend.destroy(handle);
    } catch (RuntimeException e) {
      LOG.warnf(e, "destroying an unused wrapping key of import job %s failed", jn);
    }
  }

  private static ServiceException jobExists(JobName jn) {
    return new ServiceException(ErrorCode.ALREADY_EXISTS, KeyReason.IMPORT_JOB_ALREADY_EXISTS,
        "import job \"" + jn + "\" already exists", Map.of("import_job", jn.full()), null);
  }

  private static ServiceException jobNotFound(String name) {
    return new ServiceException(ErrorCode.NOT_FOUND, KeyReason.IMPORT_JOB_NOT_FOUND,
        "import job \"" + name + "\" not found", Map.of("import_job", name), null);
  }

  /** A state change and its audit event in one transaction (as the key lifecycle does it). */
  private <T> T mutation(String resource, Supplier<T> work) {
    CallInfo call = CallInfo.current();
    return mutation(call != null ? call : CallInfo.system("internal"), resource, work);
  }

  private <T> T mutation(CallInfo call, String resource, Supplier<T> work) {
    T result = inNewTransaction(() -> {
      T r = work.get();
      if (r != null) audit.recordInTransaction(outbox, call, resource, 0);
      return r;
    });
    if (result != null) audit.committed(call);
    return result;
  }

  private static <T> T inNewTransaction(Supplier<T> work) {
    return QuarkusTransaction.requiringNew().call(work::get);
  }

  private static Instant now() {
    return Instant.now().truncatedTo(ChronoUnit.MICROS);
  }
}

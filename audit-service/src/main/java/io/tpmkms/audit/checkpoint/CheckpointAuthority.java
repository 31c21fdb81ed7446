package io.tpmkms.audit.checkpoint;

import io.tpmkms.audit.AuditConfig;
import io.tpmkms.audit.chain.Canonical;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.software.FileRootKeySource;
import io.tpmkms.protection.software.SoftwareKeyProtectionBackend;
import io.tpmkms.protection.tpm.TpmConfig;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import io.tpmkms.protection.tpm.TpmNvExtendIndex;
import io.tpmkms.protection.tpm.TpmSealedRootKeySource;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Who signs checkpoints and where they are anchored, chosen by configuration.
 *
 * <ul>
 *   <li>With a TPM ({@code tpmkms.backend.tpm.transport}): the audit key is an ECDSA P-256 key
 *       of the TPM ({@link TpmKeyProtectionBackend}; its auth values derive from a root seed
 *       sealed by this TPM in {@code <data-dir>/audit-root.sealed}), its blob in
 *       {@code <data-dir>/audit-signing-key.tpm}; every checkpoint's head hash is extended into
 *       the NV extend index {@code tpmkms.audit.nv-index} (defined on first start). Anchor
 *       {@code tpm-nv}.
 *   <li>Without: a software ECDSA P-256 key wrapped under the root seed file
 *       {@code <data-dir>/audit-root.key}, its blob in {@code <data-dir>/audit-signing-key.software}.
 *       Anchor {@code software}: nothing outside the database vouches for the head.
 * </ul>
 * The key is generated on first start and kept; losing its blob means later
 * checkpoints are signed by a new key (and older ones verify only against the
 * old public key, which every checkpoint row carries and an auditor pins).
 *
 * <p>Threading: safe; TPM commands are serialized by the connection.
 * Errors: {@link io.tpmkms.protection.BackendException} (UNAVAILABLE when the TPM is unreachable).
 */
@ApplicationScoped
public class CheckpointAuthority {
  private static final Logger LOG = Logger.getLogger(CheckpointAuthority.class);

  private final KeyProtectionBackend backend;
  private final KeyHandle key;
  private final String publicKeyPem;
  private final PublicKey publicKey;
  private final TpmConnection tpm;
  private final TpmNvExtendIndex nv;

  public CheckpointAuthority(AuditConfig config, io.tpmkms.platform.metrics.TpmMetrics tpmMetrics,
      io.tpmkms.platform.health.Readiness readiness) {
    Path dataDir = Path.of(config.dataDir()).toAbsolutePath();
    createPrivateDir(dataDir);
    var tpmConfig = config.backend().tpm();
    Path keyFile;
    if (tpmConfig.isPresent()) {
      tpm = TpmConnection.open(tpmConfig.get().toTpmConfig());
      tpmMetrics.watch(tpm);
      readiness.register("tpm", tpm::problem);
      byte[] seed = new TpmSealedRootKeySource(tpm, dataDir.resolve("audit-root.sealed"), null,
          tpmConfig.get().rootSeal(dataDir)).rootSeed();
      backend = new TpmKeyProtectionBackend(tpm, seed);
      nv = new TpmNvExtendIndex(tpm, Integer.decode(config.audit().nvIndex()));
      if (nv.defineIfAbsent()) LOG.infof("defined the TPM NV extend index 0x%08x", nv.index());
      keyFile = dataDir.resolve("audit-signing-key.tpm");
    } else {
      tpm = null;
      nv = null;
      backend = new SoftwareKeyProtectionBackend(new FileRootKeySource(dataDir.resolve("audit-root.key")));
      keyFile = dataDir.resolve("audit-signing-key.software");
    }
    key = loadOrGenerate(keyFile);
    publicKeyPem = Checkpoint.pem(backend.publicKey(key));
    try {
      publicKey = Checkpoint.publicKey(publicKeyPem);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the audit signing key's public key does not parse", e);
    }
    LOG.infof("audit checkpoints signed by a %s key, anchor %s; public key:%n%s", backend.describe().id(), anchor(),
        publicKeyPem);
  }

  /** {@code tpm-nv} or {@code software}. */
  public String anchor() { return nv != null ? Checkpoint.ANCHOR_TPM_NV : Checkpoint.ANCHOR_SOFTWARE; }

  /** {@code tpm} or {@code software}: where the signing key lives. */
  public String keyBackend() { return backend.describe().id(); }

  public String publicKeyPem() { return publicKeyPem; }

  public PublicKey publicKey() { return publicKey; }

  /** DER ECDSA P-256 signature over SHA-256 of the canonical checkpoint bytes. */
  public byte[] sign(byte[] canonicalCheckpoint) {
    return backend.sign(key, Canonical.sha256().digest(canonicalCheckpoint));
  }

  /** Extends the NV index with a head hash (tpm-nv only). */
  public void extend(byte[] headHash) {
    if (nv == null) throw new IllegalStateException("no NV anchor without a TPM");
    nv.extend(headHash);
  }

  /** The NV index's value now; empty without a TPM. */
  public Optional<byte[]> anchorValue() {
    return nv == null ? Optional.empty() : Optional.of(nv.read());
  }

  /** The NV index handle, or 0 without a TPM. */
  public int nvIndex() { return nv == null ? 0 : nv.index(); }

  private KeyHandle loadOrGenerate(Path file) {
    try {
      if (Files.exists(file)) return new KeyHandle(Files.readAllBytes(file));
      GeneratedKey g = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
      writeAtomically(file, g.handle().blob());
      LOG.infof("generated the audit signing key (%s) in %s", backend.describe().id(), file);
      return g.handle();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read or write the audit signing key " + file, e);
    }
  }

  private static void writeAtomically(Path file, byte[] content) throws IOException {
    Path tmp = Files.createTempFile(file.getParent(), "." + file.getFileName(), ".tmp",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.wrap(content);
      while (b.hasRemaining()) ch.write(b);
      ch.force(true);
    }
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
  }

  private static void createPrivateDir(Path dir) {
    try {
      Files.createDirectories(dir);
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the data directory " + dir, e);
    }
  }


  @PreDestroy
  void close() {
    backend.close();
    if (tpm != null) tpm.close();
  }
}

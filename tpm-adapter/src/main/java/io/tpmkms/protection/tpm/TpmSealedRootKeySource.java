package io.tpmkms.protection.tpm;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.software.FileRootKeySource;
import io.tpmkms.protection.software.RootKeySource;
import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.PolicySession;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import org.jboss.logging.Logger;
import tss.tpm.TPM_HANDLE;

/**
 * The software root seed sealed by the TPM: a sealed data object (keyedHash,
 * neither sign nor decrypt, userWithAuth, empty auth value) under the SRK,
 * whose TPM2B_PUBLIC and TPM2B_PRIVATE are kept in a file (mode 0600; the
 * {@link TpmBlob} layout with backend id 0x03). The file alone is useless
 * without this TPM's owner seed; this TPM alone is useless without the file.
 *
 * <ul>
 *   <li>First use, no sealed file: the seed is 32 bytes from TPM2_GetRandom — or, if a plain
 *       seed file from an earlier run is given and exists, that seed (migration: a warning asks
 *       the operator to delete the plain file once the sealed one is backed up) — sealed and
 *       saved atomically.
 *   <li>Later uses: Load + TPM2_Unseal + FlushContext.
 * </ul>
 *
 * <p>Threading: safe; calls are serialized. Errors: KEY_INVALID if the sealed
 * file is malformed or was sealed by another TPM/owner seed; UNAVAILABLE if the
 * TPM cannot be reached; INTERNAL for file I/O failures.
 */
public final class TpmSealedRootKeySource implements RootKeySource {
  private static final Logger LOG = Logger.getLogger(TpmSealedRootKeySource.class);

  private final TpmConnection connection;
  private final Path sealedFile;
  private final Path plainSeedFile;

  /**
   * @param sealedFile where the sealed object lives (e.g. {@code software-root.sealed})
   * @param plainSeedFile a plain seed file of an earlier run to migrate, or null
   */
  public TpmSealedRootKeySource(TpmConnection connection, Path sealedFile, Path plainSeedFile) {
    if (connection == null || sealedFile == null) throw new IllegalArgumentException("connection and file required");
    this.connection = connection;
    this.sealedFile = sealedFile.toAbsolutePath();
    this.plainSeedFile = plainSeedFile;
  }

  public Path sealedFile() { return sealedFile; }

  @Override
  public synchronized byte[] rootSeed() {
    if (Files.exists(sealedFile)) return unseal();
    byte[] seed;
    if (plainSeedFile != null && Files.exists(plainSeedFile)) {
      seed = new FileRootKeySource(plainSeedFile).rootSeed();
      LOG.warnf("migrating the plain root seed %s into the TPM-sealed %s; delete the plain file once the "
          + "sealed file is backed up", plainSeedFile, sealedFile);
    } else {
      seed = connection.execute(s -> TpmKeyProtectionBackend.random(s, SEED_LENGTH));
    }
    seal(seed);
    LOG.infof("sealed the software root seed to the TPM in %s", sealedFile);
    return seed;
  }

  private void seal(byte[] seed) {
    TpmBlob blob = connection.execute(s -> {
      // salted to the SRK: the seed crosses the bus encrypted (ADR 0028)
      byte[][] created = s.create(new byte[0], seed, Templates.sealedData());
      byte[] tpmt = created[1];
      byte[] pub = new byte[2 + tpmt.length];
      pub[0] = (byte) (tpmt.length >>> 8);
      pub[1] = (byte) tpmt.length;
      System.arraycopy(tpmt, 0, pub, 2, tpmt.length);
      return new TpmBlob(TpmBlob.BACKEND_TPM_SEALED_ROOT, 0, s.srkName(), new byte[TpmBlob.OBJECT_ID_LENGTH],
          pub, created[0]);
    });
    write(blob.encode());
  }

  private byte[] unseal() {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(sealedFile);
    } catch (IOException e) {
      throw new BackendException(Kind.INTERNAL, "cannot read " + sealedFile, e);
    }
    TpmBlob blob = TpmBlob.decode(bytes, TpmBlob.BACKEND_TPM_SEALED_ROOT);
    byte[] seed = connection.execute(s -> unseal(s, blob));
    if (seed == null || seed.length != SEED_LENGTH) {
      throw new BackendException(Kind.KEY_INVALID, "sealed root seed has the wrong length");
    }
    return seed;
  }

  private byte[] unseal(TpmSession s, TpmBlob blob) {
    if (!Arrays.equals(s.srkName(), blob.srkName())) {
      throw new BackendException(Kind.KEY_INVALID, "the root seed in " + sealedFile
          + " was sealed by another TPM or owner seed (SRK name mismatch); it cannot be unsealed here");
    }
    TPM_HANDLE h = s.loadUncached(blob.tpmtPublic(), blob.tpm2bPrivate(), new byte[0]);
    try {
      // its auth value is empty: a session salted to the SRK encrypts the seed in the response (ADR 0028)
      byte[] r = s.saltedSession().command("Unseal", CC_UNSEAL, new int[] {h.handle},
          new byte[][] {Templates.name(blob.tpmtPublic())}, new byte[0], new byte[0], 0, false,
          PolicySession.ENCRYPT_RESPONSE);
      return Marshal.tpm2b(ByteBuffer.wrap(r));
    } finally {
      s.flush(h);
    }
  }

  private static final int CC_UNSEAL = 0x15E;

  private void write(byte[] content) {
    try {
      Path dir = sealedFile.getParent();
      if (dir != null) Files.createDirectories(dir);
      Path tmp = Files.createTempFile(dir, "." + sealedFile.getFileName(), ".tmp",
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer b = ByteBuffer.wrap(content);
        while (b.hasRemaining()) ch.write(b);
        ch.force(true);
      }
      Files.move(tmp, sealedFile, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new BackendException(Kind.INTERNAL, "cannot write " + sealedFile, e);
    }
  }

  @Override public String toString() { return "TpmSealedRootKeySource[" + sealedFile + "]"; }
}

package io.tpmkms.protection.software;

import io.tpmkms.protection.BackendException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * A root seed kept in a file of exactly {@value RootKeySource#SEED_LENGTH} bytes.
 *
 * <p>On first use, if the file does not exist, it is created with bytes from
 * {@link SecureRandom}: the parent directories are created with mode 0700, the
 * seed is written to a temporary file created with mode 0600 in the same
 * directory, synced, then published under the final name in one atomic step
 * (a hard link, which fails if another process published a seed first — that
 * seed then wins and is read; on file systems without hard links, an atomic
 * rename). A half-written seed is therefore never visible.
 *
 * <p>Later uses read the file. A file of another length, or one that gives any
 * permission to group or others (on POSIX file systems), is refused with
 * KEY_INVALID: the seed is the root of every software key. One exception: a
 * read-only file ({@code r--r-----}) whose group is this process's own group
 * is accepted — that is a Kubernetes Secret mounted in a pod with
 * {@code fsGroup}, where the kubelet makes every file group-readable and the
 * group holds only the service's user.
 *
 * <p>Threading: safe for concurrent use; creation is serialized within the JVM
 * and atomic across processes.
 */
public final class FileRootKeySource implements RootKeySource {
  private static final Logger LOG = Logger.getLogger(FileRootKeySource.class);
  private static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");
  private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> GROUP_OR_OTHER = EnumSet.of(
      PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
      PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);

  private final Path seedFile;

  public FileRootKeySource(Path seedFile) {
    if (seedFile == null) throw new IllegalArgumentException("seed file path is required");
    this.seedFile = seedFile.toAbsolutePath();
  }

  public Path seedFile() { return seedFile; }

  @Override
  public synchronized byte[] rootSeed() {
    if (!Files.exists(seedFile)) {
      create();
    }
    return read();
  }

  private byte[] read() {
    if (!Files.isRegularFile(seedFile)) {
      throw new BackendException(BackendException.Kind.KEY_INVALID,
          "root seed " + seedFile + " is not a regular file");
    }
    checkPermissions();
    byte[] seed;
    try {
      seed = Files.readAllBytes(seedFile);
    } catch (IOException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot read root seed " + seedFile, e);
    }
    if (seed.length != SEED_LENGTH) {
      int n = seed.length;
      Arrays.fill(seed, (byte) 0);
      throw new BackendException(BackendException.Kind.KEY_INVALID,
          "root seed " + seedFile + " has " + n + " bytes, expected " + SEED_LENGTH);
    }
    return seed;
  }

  private void checkPermissions() {
    PosixFileAttributeView view = Files.getFileAttributeView(seedFile, PosixFileAttributeView.class);
    if (view == null) return; // not a POSIX file system: nothing to check
    Set<PosixFilePermission> perms;
    try {
      perms = view.readAttributes().permissions();
    } catch (IOException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot read permissions of " + seedFile, e);
    }
    Set<PosixFilePermission> excess = EnumSet.noneOf(PosixFilePermission.class);
    excess.addAll(perms);
    excess.retainAll(GROUP_OR_OTHER);
    if (excess.equals(EnumSet.of(PosixFilePermission.GROUP_READ))
        && !perms.contains(PosixFilePermission.OWNER_WRITE) && groupIsOurs(seedFile)) {
      return; // a Secret mounted with fsGroup: r--r----- and the group is this process's
    }
    if (!excess.isEmpty()) {
      throw new BackendException(BackendException.Kind.KEY_INVALID,
          "root seed " + seedFile + " has permissions " + PosixFilePermissions.toString(perms)
              + "; refusing a seed accessible to group or others (chmod 600 it)");
    }
  }

  /** Whether the file's group is this process's effective group (Linux: the group owning /proc/self). */
  static boolean groupIsOurs(Path file) {
    try {
      Object fileGid = Files.getAttribute(file, "unix:gid");
      Object ourGid = Files.getAttribute(Path.of("/proc/self"), "unix:gid");
      return fileGid != null && fileGid.equals(ourGid);
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
  }

  private void create() {
    Path dir = seedFile.getParent();
    boolean posix = seedFile.getFileSystem().supportedFileAttributeViews().contains("posix");
    byte[] seed = new byte[SEED_LENGTH];
    Path tmp = null;
    try {
      if (dir != null && !Files.isDirectory(dir)) {
        if (posix) {
          Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(DIR_MODE));
        } else {
          Files.createDirectories(dir);
        }
      }
      new SecureRandom().nextBytes(seed);
      FileAttribute<?>[] attrs = posix
          ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(FILE_MODE)}
          : new FileAttribute<?>[0];
      tmp = Files.createTempFile(dir, "." + seedFile.getFileName() + ".", ".tmp", attrs);
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer buf = ByteBuffer.wrap(seed);
        while (buf.hasRemaining()) ch.write(buf);
        ch.force(true);
      }
      publish(tmp);
      syncDirectory(dir);
      LOG.infof("created a new software root seed at %s", seedFile);
    } catch (IOException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot create root seed " + seedFile, e);
    } finally {
      Arrays.fill(seed, (byte) 0);
      if (tmp != null) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException e) {
          LOG.warnf("cannot delete temporary seed file %s", tmp);
        }
      }
    }
  }

  /** Makes tmp visible as seedFile atomically, without replacing a seed another process published. */
  private void publish(Path tmp) throws IOException {
    try {
      Files.createLink(seedFile, tmp);
    } catch (FileAlreadyExistsException e) {
      LOG.infof("root seed %s was created concurrently; using it", seedFile);
    } catch (UnsupportedOperationException | IOException e) {
      if (Files.exists(seedFile, LinkOption.NOFOLLOW_LINKS)) return;
      try {
        Files.move(tmp, seedFile, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e2) {
        throw new IOException("file system supports neither hard links nor atomic moves", e2);
      }
    }
  }

  private static void syncDirectory(Path dir) {
    if (dir == null) return;
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException | RuntimeException e) {
      // Some platforms cannot open a directory; the file itself was synced.
    }
  }

  @Override public String toString() { return "FileRootKeySource[" + seedFile + "]"; }
}

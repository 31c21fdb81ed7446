package io.tpmkms.images;

import com.google.cloud.tools.jib.api.buildplan.AbsoluteUnixPath;
import com.google.cloud.tools.jib.api.buildplan.FileEntriesLayer;
import com.google.cloud.tools.jib.api.buildplan.FileEntry;
import com.google.cloud.tools.jib.api.buildplan.FilePermissions;
import com.google.cloud.tools.jib.api.buildplan.SpecialModes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The layers the images are made of. Every file belongs to root and is read-only for everyone else
 * (0644, or 0755 when the host file is executable), so the process, which runs as
 * {@value #APP_USER}, cannot change its own code; only its state directories and /tmp are writable.
 * Every entry has the same modification time: the same inputs give the same layer digests.
 */
final class Layers {
  static final String APP_USER = "10001:10001";
  static final String APP_USER_NAME = "tpmkms";
  static final String ROOT = "0:0";
  static final Instant FILE_TIME = FileEntriesLayer.DEFAULT_MODIFICATION_TIME;
  static final FilePermissions EXECUTABLE = FilePermissions.fromOctalString("755");
  static final FilePermissions READ_ONLY = FilePermissions.fromOctalString("644");
  static final FilePermissions PRIVATE_DIR = FilePermissions.fromOctalString("700");

  private Layers() {}

  /** Host files at the given image paths (the shared libraries, a shell). */
  static FileEntriesLayer files(String name, Map<String, Path> imagePathToHost) throws IOException {
    FileEntriesLayer.Builder layer = FileEntriesLayer.builder().setName(name);
    for (Map.Entry<String, Path> e : imagePathToHost.entrySet()) {
      layer.addEntry(rootOwned(e.getValue(), AbsoluteUnixPath.get(e.getKey())));
    }
    return layer.build();
  }

  /** Every file under {@code hostDir}, at the same relative path under {@code imageDir}. */
  static FileEntriesLayer tree(String name, Path hostDir, String imageDir) throws IOException {
    FileEntriesLayer.Builder layer = FileEntriesLayer.builder().setName(name);
    addTree(layer, hostDir, AbsoluteUnixPath.get(imageDir));
    return layer.build();
  }

  /** Several trees and files in one layer: image path to host file or directory. */
  static FileEntriesLayer trees(String name, Map<String, Path> imagePathToHost) throws IOException {
    FileEntriesLayer.Builder layer = FileEntriesLayer.builder().setName(name);
    for (Map.Entry<String, Path> e : imagePathToHost.entrySet()) {
      AbsoluteUnixPath target = AbsoluteUnixPath.get(e.getKey());
      if (Files.isDirectory(e.getValue())) {
        addTree(layer, e.getValue(), target);
      } else {
        layer.addEntry(rootOwned(e.getValue(), target));
      }
    }
    return layer.build();
  }

  /**
   * The user and group {@value #APP_USER} ({@value #APP_USER_NAME}: PostgreSQL's initdb and Java's
   * user.home look the user up), name resolution from files (localhost without DNS), /tmp (1777),
   * the user's home and the given state directories (0700, the user's).
   */
  static FileEntriesLayer users(Path work, List<String> stateDirs) throws IOException {
    Path dir = work.resolve("users");
    Path empty = dir.resolve("empty-dir");
    Files.createDirectories(empty);
    String uid = APP_USER.substring(0, APP_USER.indexOf(':'));
    String gid = APP_USER.substring(APP_USER.indexOf(':') + 1);
    String home = "/home/" + APP_USER_NAME;
    Path passwd = write(dir.resolve("passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n"
            + APP_USER_NAME + ":x:" + uid + ":" + gid + ":tpmkms:" + home + ":/sbin/nologin\n");
    Path group = write(dir.resolve("group"), "root:x:0:\n" + APP_USER_NAME + ":x:" + gid + ":\n");
    Path nsswitch = write(dir.resolve("nsswitch.conf"),
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n");
    Path hosts = write(dir.resolve("hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");

    FileEntriesLayer.Builder layer = FileEntriesLayer.builder().setName("users")
        .addEntry(rootOwned(passwd, AbsoluteUnixPath.get("/etc/passwd")))
        .addEntry(rootOwned(group, AbsoluteUnixPath.get("/etc/group")))
        .addEntry(rootOwned(nsswitch, AbsoluteUnixPath.get("/etc/nsswitch.conf")))
        .addEntry(rootOwned(hosts, AbsoluteUnixPath.get("/etc/hosts")))
        .addEntry(new FileEntry(empty, AbsoluteUnixPath.get("/tmp"), SpecialModes.stickyWorldWritable(),
            FILE_TIME, ROOT))
        .addEntry(new FileEntry(empty, AbsoluteUnixPath.get(home), PRIVATE_DIR, FILE_TIME, APP_USER));
    for (String stateDir : stateDirs) {
      layer.addEntry(new FileEntry(empty, AbsoluteUnixPath.get(stateDir), PRIVATE_DIR, FILE_TIME, APP_USER));
    }
    return layer.build();
  }

  private static void addTree(FileEntriesLayer.Builder layer, Path hostDir, AbsoluteUnixPath imageDir)
      throws IOException {
    if (!Files.isDirectory(hostDir)) {
      throw new IOException(hostDir + " is missing: build its module first (./mvnw -pl images -am package)");
    }
    List<Path> files;
    try (Stream<Path> walk = Files.walk(hostDir)) {
      files = walk.filter(p -> !Files.isDirectory(p)).sorted().toList();
    }
    for (Path file : files) {
      if (!Files.isRegularFile(file)) {
        throw new IOException(file + " is neither a file nor a directory (a dangling link?): not put in an image");
      }
      Path relative = hostDir.relativize(file);
      layer.addEntry(rootOwned(file, imageDir.resolve(relative.toString().replace('\\', '/'))));
    }
  }

  /** A host file (links followed) owned by root, executable when the host file is. */
  static FileEntry rootOwned(Path host, AbsoluteUnixPath target) throws IOException {
    if (!Files.isRegularFile(host)) throw new IOException(host + " is missing: cannot put it at " + target);
    boolean executable = Files.getPosixFilePermissions(host).contains(PosixFilePermission.OWNER_EXECUTE);
    FilePermissions mode = executable ? EXECUTABLE : READ_ONLY;
    return new FileEntry(host, target, mode, FILE_TIME, ROOT);
  }

  /** Writes {@code content} unless the file already holds it (Jib's layer cache keys on mtimes). */
  static Path write(Path file, String content) throws IOException {
    byte[] bytes = content.getBytes(StandardCharsets.UTF_8);
    if (!Files.exists(file) || !Arrays.equals(Files.readAllBytes(file), bytes)) {
      Files.createDirectories(file.getParent());
      Files.write(file, bytes);
    }
    return file;
  }
}

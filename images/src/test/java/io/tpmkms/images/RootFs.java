package io.tpmkms.images;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * An image's layers unpacked into a directory, bottom layer first, whiteouts honoured, and a way to
 * run a command in it as the container runtime would: as root (CI), in a private mount namespace
 * ({@code unshare -m}) with /dev and /proc mounted, chrooted into the directory as the image's user
 * 10001:10001 ({@code unshare --root --wd --setuid --setgid}), so only the image's own files serve.
 * Without root (or without unshare): the image's programs run from the directory as the current
 * user, paths rewritten into it, the host's dynamic loader (the same glibc) in front: a weaker check.
 */
public final class RootFs {
  public static final String UNSHARE = "/usr/bin/unshare";
  /** $1 root, $2 working directory, then the command: mounts in the private namespace, then chroot. */
  private static final String ENTER = "mount --rbind /dev \"$1/dev\" && mount -t proc proc \"$1/proc\""
      + " && r=$1 && w=$2 && shift 2"
      + " && exec " + UNSHARE + " --root=\"$r\" --wd=\"$w\" --setgid 10001 --setuid 10001 \"$@\"";

  public final Path root;
  public final boolean chroot;

  private RootFs(Path root, boolean chroot) {
    this.root = root;
    this.chroot = chroot;
  }

  /** Unpacks {@code image}'s layers into {@code dir}. */
  public static RootFs unpack(OciImage image, Path dir) throws IOException, InterruptedException {
    boolean chroot = isRoot() && Files.isExecutable(Path.of(UNSHARE));
    Images.deleteTree(dir);
    Files.createDirectories(dir);
    for (Path layer : image.layers()) {
      applyWhiteouts(image, layer, dir);
      List<String> tar = new ArrayList<>(List.of("tar", "--warning=no-unknown-keyword", "--exclude=.wh.*",
          "-xzpf", layer.toString(), "-C", dir.toString()));
      if (chroot) tar.add("--same-owner");
      run(tar);
    }
    Files.createDirectories(dir.resolve("dev"));
    Files.createDirectories(dir.resolve("proc"));
    return new RootFs(dir, chroot);
  }

  /**
   * Whiteouts delete what lower layers put there ({@code .wh.<name>}: that name;
   * {@code .wh..wh..opq}: the directory's earlier content), before this layer's own files land.
   */
  private static void applyWhiteouts(OciImage image, Path layer, Path dir) throws IOException {
    image.forEachEntry(layer, (entry, content) -> {
      Path path = Path.of(entry.getName());
      String file = path.getFileName().toString();
      if (!file.startsWith(".wh.")) return;
      Path parent = path.getParent() == null ? dir : dir.resolve(path.getParent().toString()).normalize();
      if (!parent.startsWith(dir)) throw new IOException("whiteout outside the root: " + entry.getName());
      if (file.equals(".wh..wh..opq")) {
        if (Files.isDirectory(parent)) {
          try (var children = Files.list(parent)) {
            for (Path child : children.toList()) Images.deleteTree(child);
          }
        }
      } else {
        Images.deleteTree(parent.resolve(file.substring(".wh.".length())));
      }
    });
  }

  /** A path of the image as the command sees it: itself under chroot, else under the directory. */
  String path(String imagePath) {
    return chroot ? imagePath : root + imagePath;
  }

  /**
   * The command (its program and arguments already in the image's terms) in the image's working
   * directory with exactly {@code env}; output to {@code log}.
   */
  ProcessBuilder command(List<String> command, String workDir, Map<String, String> env, Path log) {
    List<String> argv = new ArrayList<>();
    if (chroot) {
      argv.addAll(List.of(UNSHARE, "-m", "/bin/sh", "-c", ENTER, "sh", root.toString(), workDir));
      argv.addAll(command);
    } else {
      for (String arg : command) argv.add(arg.startsWith("/") ? path(arg) : arg);
    }
    ProcessBuilder builder = builder(argv, env, log);
    if (chroot) {
      // the host's sh and mount run first, then unshare --root: the image's PATH works for both
      builder.environment().putIfAbsent("PATH", "/usr/bin:/bin");
    } else {
      builder.directory(Path.of(path(workDir)).toFile());
      builder.environment().replaceAll((k, v) -> v.startsWith("/") && !k.equals("PATH") ? path(v) : v);
    }
    return builder;
  }

  /** A directory of this machine mounted into the root file system, as a pod's volume is. */
  public record Mount(Path source, String target, boolean readOnly) {}

  /**
   * As {@link #command(List, String, Map, Path)}, chrooted, with {@code mounts} bound into the root in
   * the private mount namespace (read-only where asked), the root itself read-only when
   * {@code readOnlyRoot}, and as {@code uid}:{@code gid}: a container of a pod with its volumes. Needs
   * root ({@link #chroot}).
   */
  public ProcessBuilder command(List<String> command, String workDir, Map<String, String> env, Path log,
      List<Mount> mounts, long uid, long gid, boolean readOnlyRoot) throws IOException {
    if (!chroot) throw new IllegalStateException("volumes need the chroot (run as root with " + UNSHARE + ")");
    // mount points first: a read-only root takes no new directory
    for (Mount m : mounts) {
      Path point = root.resolve(m.target().substring(1));
      if (Files.isDirectory(m.source())) {
        Files.createDirectories(point);
      } else if (!Files.exists(point)) {
        Files.createDirectories(point.getParent());
        Files.createFile(point);
      }
    }
    StringBuilder script = new StringBuilder();
    if (readOnlyRoot) script.append("mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && ");
    script.append("mount --rbind /dev \"$1/dev\" && mount -t proc proc \"$1/proc\"");
    for (Mount m : mounts) {
      Path point = root.resolve(m.target().substring(1));
      script.append(" && mount --bind ").append(quote(m.source().toString())).append(' ').append(quote(point.toString()));
      if (m.readOnly()) script.append(" && mount -o remount,bind,ro ").append(quote(point.toString()));
    }
    script.append(" && r=$1 && w=$2 && shift 2 && exec ").append(UNSHARE)
        .append(" --root=\"$r\" --wd=\"$w\" --setgid ").append(gid).append(" --setuid ").append(uid).append(" \"$@\"");
    List<String> argv = new ArrayList<>(List.of(UNSHARE, "-m", "/bin/sh", "-c", script.toString(), "sh",
        root.toString(), workDir));
    argv.addAll(command);
    ProcessBuilder builder = builder(argv, env, log);
    builder.environment().putIfAbsent("PATH", "/usr/bin:/bin");
    return builder;
  }

  /** {@code argv} with exactly {@code env}, no input, output (and errors) to {@code log}. */
  private static ProcessBuilder builder(List<String> argv, Map<String, String> env, Path log) {
    ProcessBuilder builder = new ProcessBuilder(argv)
        .redirectErrorStream(true)
        .redirectOutput(log.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    builder.environment().clear();
    builder.environment().putAll(env);
    return builder;
  }

  private static String quote(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }

  /**
   * Stops {@code process} (SIGTERM, then SIGKILL after {@code graceSeconds}) and every process still
   * running inside this root (the embedded PostgreSQL of a service killed too early).
   */
  public void stop(Process process, int graceSeconds) throws IOException, InterruptedException {
    process.destroy();
    if (!process.waitFor(graceSeconds, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(5, TimeUnit.SECONDS);
    }
    if (!chroot) return;
    Path real = root.toRealPath();
    try (var procs = Files.list(Path.of("/proc"))) {
      for (Path proc : procs.toList()) {
        if (!proc.getFileName().toString().matches("\\d+")) continue;
        try {
          if (Files.readSymbolicLink(proc.resolve("root")).equals(real)) {
            ProcessHandle.of(Long.parseLong(proc.getFileName().toString())).ifPresent(ProcessHandle::destroyForcibly);
          }
        } catch (IOException gone) {
          // exited meanwhile, or not ours to read
        }
      }
    }
  }

  public static boolean isRoot() throws IOException, InterruptedException {
    return run(List.of("id", "-u")).strip().equals("0");
  }

  static String run(List<String> command) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, process.waitFor(), String.join(" ", command) + ": " + output);
    return output;
  }

  public static String tail(Path log, int lines) {
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException ex) {
      return "(no log: " + ex.getMessage() + ")";
    }
  }
}

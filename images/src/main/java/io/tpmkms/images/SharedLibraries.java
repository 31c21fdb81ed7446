package io.tpmkms.images;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The shared libraries that host binaries need, as {@code ldd} resolves them on this machine: the
 * glibc closure of the jlinked {@code java} and of {@code swtpm}. Each library goes into the image
 * at the path ldd printed (a default search directory of the dynamic loader, or a RUNPATH of the
 * binary), with the resolved file's content, so the loader finds it there without an
 * {@code ld.so.cache} and without symbolic links (Jib's layers hold regular files only).
 */
final class SharedLibraries {
  /**
   * glibc libraries no binary of ours names but programs started inside the image may load: the
   * embedded PostgreSQL's binaries link libdl, libpthread and librt; glibc before 2.34 loads its NSS
   * modules at run time. Each is added when it lies beside libc.so.6.
   */
  static final List<String> GLIBC_COMPANIONS = List.of(
      "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libresolv.so.2",
      "libnss_files.so.2", "libnss_dns.so.2");

  private static final Pattern RESOLVED = Pattern.compile("^\\s*(\\S+) => (/\\S+) \\(0x[0-9a-f]+\\)$");
  private static final Pattern MISSING = Pattern.compile("^\\s*(\\S+) => not found$");
  private static final Pattern LOADER = Pattern.compile("^\\s*(/\\S+) \\(0x[0-9a-f]+\\)$");
  private static final byte[] ELF_MAGIC = {0x7f, 'E', 'L', 'F'};

  private SharedLibraries() {}

  /**
   * Image path to host file of every library the ELF files among {@code files} need, leaving out
   * those inside {@code ownTree} (a runtime that carries its own libraries, found through
   * {@code $ORIGIN}).
   */
  static SortedMap<String, Path> closureOf(Collection<Path> files, Path ownTree) throws IOException {
    SortedMap<String, Path> libraries = new TreeMap<>();
    Map<String, String> env = ownTree == null ? Map.of() : Map.of("LD_LIBRARY_PATH", libraryDirs(ownTree));
    for (Path file : files) {
      if (!isElf(file)) continue;
      for (String line : ldd(file, env).split("\n")) {
        Matcher missing = MISSING.matcher(line);
        if (missing.matches()) {
          throw new IOException(file + " needs " + missing.group(1)
              + ", which the dynamic loader does not find on this machine (ldd: not found); install the"
              + " package that ships it");
        }
        Matcher resolved = RESOLVED.matcher(line);
        Matcher loader = LOADER.matcher(line);
        String path = resolved.matches() ? resolved.group(2) : loader.matches() ? loader.group(1) : null;
        if (path == null) continue; // linux-vdso.so.1, "statically linked"
        Path host = Path.of(path).normalize();
        if (ownTree != null && host.toAbsolutePath().startsWith(ownTree.toAbsolutePath())) continue;
        libraries.put(host.toString(), host);
      }
    }
    addGlibcCompanions(libraries);
    return libraries;
  }

  private static void addGlibcCompanions(SortedMap<String, Path> libraries) {
    Path libc = libraries.values().stream()
        .filter(p -> p.getFileName().toString().equals("libc.so.6"))
        .findFirst()
        .orElse(null);
    if (libc == null) return;
    for (String name : GLIBC_COMPANIONS) {
      Path companion = libc.resolveSibling(name);
      if (Files.isRegularFile(companion)) libraries.putIfAbsent(companion.toString(), companion);
    }
  }

  /**
   * The directories of {@code tree} that hold shared libraries: a JDK's libraries name libjvm.so and
   * libjava.so without a RUNPATH (the JVM has loaded them by then), so ldd is told where they are.
   */
  private static String libraryDirs(Path tree) throws IOException {
    try (Stream<Path> walk = Files.walk(tree)) {
      return walk.filter(p -> p.getFileName().toString().endsWith(".so"))
          .map(p -> p.getParent().toString())
          .distinct()
          .sorted()
          .collect(Collectors.joining(":"));
    }
  }

  private static String ldd(Path file, Map<String, String> env) throws IOException {
    Commands.Result result = Commands.tryRun(file.getParent(), List.of("ldd", file.toString()), env);
    if (result.exitCode() != 0 && !result.output().contains("not a dynamic executable")
        && !result.output().contains("statically linked")) {
      throw new IOException("ldd " + file + " failed (" + result.exitCode() + "): " + result.output().strip()
          + " (ldd comes with libc-bin)");
    }
    return result.output();
  }

  static boolean isElf(Path file) throws IOException {
    if (!Files.isRegularFile(file)) return false;
    try (InputStream in = Files.newInputStream(file)) {
      return Arrays.equals(in.readNBytes(4), ELF_MAGIC);
    }
  }
}

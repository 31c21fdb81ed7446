package io.tpmkms.images;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;

/**
 * The images' Java runtime: {@code jlink} of the JDK that runs the build, with the modules the
 * services and the CLI use, without debug symbols, headers, man pages and the desktop's native
 * libraries (X11, sound, fonts, image codecs: the services are headless, so the system layer needs
 * no X11 closure). Kept under the work directory and reused while the JDK, the modules and the
 * options are the same.
 */
final class JavaRuntime {
  /**
   * jdeps of the services' and the CLI's jars names java.base, java.logging, java.sql (and
   * java.transaction.xa), java.naming, java.xml, java.desktop (java.beans: Quarkus core, Hibernate,
   * Jackson, the PostgreSQL driver), jdk.unsupported, java.management, java.compiler, java.rmi,
   * java.security.jgss, java.instrument and java.net.http; the rest are what a JVM in production
   * wants: elliptic curves for TLS, DNS, zip file systems, charsets, JMX and flight recorder.
   */
  static final List<String> MODULES = List.of(
      "java.base", "java.compiler", "java.desktop", "java.instrument", "java.logging",
      "java.management", "java.naming", "java.net.http", "java.rmi", "java.security.jgss",
      "java.sql", "java.transaction.xa", "java.xml", "jdk.charsets", "jdk.crypto.ec", "jdk.jfr",
      "jdk.management", "jdk.naming.dns", "jdk.security.auth", "jdk.unsupported", "jdk.zipfs");

  /** Native libraries of java.desktop that only a screen, a sound card or font rendering loads. */
  static final List<String> EXCLUDED_FILES = List.of(
      "**/libawt_xawt.so", "**/libjawt.so", "**/libsplashscreen.so", "**/libjsound.so",
      "**/libfontmanager.so", "**/libjavajpeg.so", "**/liblcms.so");

  private JavaRuntime() {}

  /** The runtime under {@code work}, made by jlink unless an identical one is already there. */
  static Path ensure(Path work) throws IOException {
    Path jdk = Path.of(System.getProperty("java.home"));
    Path jlink = jdk.resolve("bin/jlink");
    if (!Files.isExecutable(jlink)) {
      throw new IOException("no jlink in " + jdk + ": build with a full JDK (apt-get install openjdk-17-jdk-headless)");
    }
    List<String> command = new ArrayList<>(List.of(
        jlink.toString(),
        "--add-modules", String.join(",", MODULES),
        "--strip-debug", "--no-header-files", "--no-man-pages",
        "--exclude-files=" + String.join(",", EXCLUDED_FILES)));
    Path runtime = work.resolve("java-runtime");
    Path stamp = work.resolve("java-runtime.stamp");
    String key = jdk + " " + System.getProperty("java.vm.version") + "\n" + String.join(" ", command) + "\n";
    if (Files.isExecutable(runtime.resolve("bin/java")) && Files.exists(stamp)
        && Files.readString(stamp, StandardCharsets.UTF_8).equals(key)) {
      return runtime;
    }
    deleteTree(runtime);
    Files.deleteIfExists(stamp);
    Files.createDirectories(work);
    command.addAll(List.of("--output", runtime.toString()));
    String output = Commands.tryRun(work, command).output();
    if (!Files.isExecutable(runtime.resolve("bin/java"))) {
      throw new IOException("jlink made no runtime (does " + jdk + " have jmods/? Debian: openjdk-17-jdk-headless):\n"
          + output.strip());
    }
    Files.writeString(stamp, key, StandardCharsets.UTF_8);
    return runtime;
  }

  /** Deletes {@code dir} and everything below it (a symbolic link itself, not what it points to). */
  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
    Files.walkFileTree(dir, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        Files.delete(file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path d, IOException ex) throws IOException {
        if (ex != null) throw ex;
        Files.delete(d);
        return FileVisitResult.CONTINUE;
      }
    });
  }
}

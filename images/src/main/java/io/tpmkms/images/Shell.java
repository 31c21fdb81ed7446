package io.tpmkms.images;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The images' /bin/sh (for the CLI's wrapper, the embedded PostgreSQL's pg_ctl, kubectl exec): the
 * host's busybox when it has one, else dash, which every Debian has.
 */
final class Shell {
  static final List<String> CANDIDATES = List.of("/usr/bin/busybox", "/bin/busybox", "/usr/bin/dash", "/bin/dash");

  private Shell() {}

  static Path find() throws IOException {
    for (String candidate : CANDIDATES) {
      Path path = Path.of(candidate);
      if (Files.isRegularFile(path) && Files.isExecutable(path)) return path;
    }
    throw new IOException("no shell for the images: none of " + CANDIDATES + " exists (apt-get install dash)");
  }
}

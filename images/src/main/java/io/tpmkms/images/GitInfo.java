package io.tpmkms.images;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * The commit the images are built from: its hash (label org.opencontainers.image.revision) and its
 * time (the images' creation time, so the same commit gives the same image digests). Outside a git
 * checkout: no revision, creation time the epoch.
 */
record GitInfo(Optional<String> revision, Instant commitTime) {

  static GitInfo of(Path projectRoot) {
    try {
      Commands.Result head = Commands.tryRun(projectRoot, List.of("git", "log", "-1", "--format=%H %ct"));
      String[] parts = head.output().strip().split(" ");
      if (head.exitCode() == 0 && parts.length == 2 && parts[0].matches("[0-9a-f]{40}")) {
        return new GitInfo(Optional.of(parts[0]), Instant.ofEpochSecond(Long.parseLong(parts[1])));
      }
    } catch (IOException | NumberFormatException ex) {
      // no git, or not a checkout: fall through
    }
    return new GitInfo(Optional.empty(), Instant.EPOCH);
  }
}

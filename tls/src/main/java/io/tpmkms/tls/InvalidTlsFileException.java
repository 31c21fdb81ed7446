package io.tpmkms.tls;

import java.nio.file.Path;

/** A certificate, key or CA file that cannot be used; the message names the file and why, never its contents. */
public final class InvalidTlsFileException extends RuntimeException {
  private final Path file;

  public InvalidTlsFileException(Path file, String problem, Throwable cause) {
    super(file + " " + problem, cause);
    this.file = file;
  }

  public Path file() {
    return file;
  }
}

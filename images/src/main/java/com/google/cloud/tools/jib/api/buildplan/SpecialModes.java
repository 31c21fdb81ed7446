package com.google.cloud.tools.jib.api.buildplan;

/**
 * File modes that {@link FilePermissions#fromOctalString} refuses: it takes three octal digits,
 * but a shared {@code /tmp} needs the sticky bit (1777: anyone may create files, only a file's
 * owner may delete it). Jib writes a layer entry's mode as {@code (mode & ~0777) | bits}, so a
 * value with the sticky bit passes through to the tar header unchanged; only the factory method
 * is missing, and {@link FilePermissions}' constructor is package-private, hence this class in
 * Jib's package. ImagesContentIT checks the mode that lands in the layer.
 */
public final class SpecialModes {
  private SpecialModes() {}

  /** {@code drwxrwxrwt}: a world-writable directory with the sticky bit. */
  public static FilePermissions stickyWorldWritable() {
    return new FilePermissions(01777);
  }
}

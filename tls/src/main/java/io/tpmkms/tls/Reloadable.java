package io.tpmkms.tls;

/** TLS material read from files that may be replaced while the process runs (see {@link CertificateReloader}). */
public interface Reloadable {
  /**
   * Reads the files again; when their contents changed and are usable, the new material is used
   * from the next handshake on. Unusable new files (half written, key and certificate not a pair)
   * leave the current material in use and throw, naming the file and the problem.
   *
   * @return whether the material changed
   */
  boolean reloadIfChanged();

  /** For logs: what is reloaded, e.g. "server certificate /etc/tls/tls.crt". */
  String description();
}

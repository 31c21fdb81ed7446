package io.tpmkms.console;

import io.smallrye.config.ConfigMapping;
import java.util.Optional;

/** Where the console finds the services (docs/console.md). */
@ConfigMapping(prefix = "tpmkms.console")
public interface ConsoleConfig {
  /** host:port of the key service. */
  String keyService();

  /** host:port of the policy service. */
  String policyService();

  /** host:port of the audit service. */
  String auditService();

  /**
   * PEM file of the TPM manufacturers' CA certificates the key page checks a key's EK certificate
   * against; unset: the EK certificate is shown, not checked.
   */
  Optional<String> ekCaFile();

  /** TLS towards the services; unset: plaintext (loopback only). */
  Tls tls();

  interface Tls {
    /** PEM CA bundle the services' certificates are verified against. */
    Optional<String> caFile();

    /** The console's client certificate, where the services ask for one. */
    Optional<String> certFile();

    Optional<String> keyFile();
  }
}

package io.tpmkms.console;

import io.quarkus.runtime.Startup;
import jakarta.inject.Singleton;
import java.security.cert.X509Certificate;
import java.util.List;

/**
 * The TPM manufacturers' CA certificates the attestation page checks EK certificates against
 * ({@code tpmkms.console.ek-ca-file}), read once when the console starts: a missing or unreadable
 * file stops the start with the reason, instead of failing every attestation page.
 */
@Startup
@Singleton
public class EkCaCertificates {
  private final List<X509Certificate> cas;

  public EkCaCertificates(ConsoleConfig config) {
    this.cas = AttestationPage.readCas(config.ekCaFile().filter(f -> !f.isBlank()));
  }

  /** Empty when none is configured (the EK certificate is then shown, not checked). */
  public List<X509Certificate> get() {
    return cas;
  }
}

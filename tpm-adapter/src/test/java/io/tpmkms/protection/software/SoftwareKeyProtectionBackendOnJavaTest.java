package io.tpmkms.protection.software;

import static org.junit.jupiter.api.Assertions.assertFalse;

import io.tpmkms.protection.AsymmetricCrypto;
import io.tpmkms.protection.AsymmetricCrypto.Family;
import org.junit.jupiter.api.Test;

/**
 * The whole software contract again with the native provider off ({@code tpmkms.crypto.provider=java}):
 * the fallback a platform without Conscrypt's library gets.
 */
class SoftwareKeyProtectionBackendOnJavaTest extends SoftwareKeyProtectionBackendTest {
  private static final AsymmetricCrypto JAVA_ONLY = AsymmetricCrypto.select(AsymmetricCrypto.Mode.parse("java"));

  SoftwareKeyProtectionBackendOnJavaTest() throws java.io.IOException {
    super();
  }

  @Override
  protected AsymmetricCrypto crypto() {
    return JAVA_ONLY;
  }

  @Test
  void runsOnTheJavaProviders() {
    assertFalse(crypto().isNative(Family.ECDSA));
    assertFalse(crypto().isNative(Family.RSA));
  }
}

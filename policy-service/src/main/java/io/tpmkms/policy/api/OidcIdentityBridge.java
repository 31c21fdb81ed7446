package io.tpmkms.policy.api;

import io.quarkus.arc.Unremovable;
import io.quarkus.oidc.TenantIdentityProvider;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

/**
 * Makes quarkus-oidc create its default {@link TenantIdentityProvider}:
 * quarkus-oidc registers that bean only for injection points it finds at
 * build time, and service-runtime's BearerTokenInterceptor looks it up
 * programmatically, which does not count. Without this, every call with a
 * token failed as UNKNOWN ("no bean found"). Never called; remove once
 * service-runtime injects the provider itself.
 */
@ApplicationScoped
@Unremovable
class OidcIdentityBridge {
  @Inject TenantIdentityProvider provider;
}

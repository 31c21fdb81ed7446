package io.tpmkms.cli.auth;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.TpmkmsCommand;
import java.io.PrintStream;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms logout}: ends the cached login. The refresh token is revoked at the provider's
 * revocation endpoint first when there is one (RFC 7009) so that a copy of the file is worthless
 * too; that is best effort — a provider that cannot be reached or refuses only earns a warning —
 * and the cache is deleted regardless. The access token stays valid until it expires (minutes):
 * Keycloak's access tokens are self-contained.
 */
@Command(name = "logout", description = {
        "Revoke the cached refresh token (best effort) and delete the token cache.",
        "A token in TPMKMS_TOKEN is not affected."})
public final class LogoutCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
        PrintStream out = root.console().out();
        PrintStream err = root.console().err();
        try {
            CredentialStore store = root.credentialStore();
            Optional<Credentials> cached;
            try {
                cached = store.read();
            } catch (java.io.IOException e) {
                err.println("warning: " + e.getMessage() + "; deleting it");
                cached = Optional.empty();
            }
            String revoked = "";
            if (cached.isPresent() && cached.get().refreshToken() != null) {
                Credentials c = cached.get();
                if (c.revocationEndpoint() == null) {
                    revoked = " (the provider has no revocation endpoint: the refresh token stays valid until it expires)";
                } else {
                    try {
                        OidcClient oidc = OidcClient.of(new OidcClient.Endpoints(c.issuer(), c.tokenEndpoint(), null,
                                c.revocationEndpoint()), root.timeout());
                        revoked = oidc.revoke(c.clientId(), null, c.refreshToken(), "refresh_token")
                                ? " (refresh token revoked)"
                                : " (the provider refused to revoke the refresh token)";
                    } catch (AuthenticationException e) {
                        err.println("warning: could not revoke the refresh token: " + e.getMessage());
                    }
                }
            }
            boolean deleted = store.delete();
            if (deleted) {
                out.println("logged out: deleted " + store.file() + revoked);
            } else {
                out.println("not logged in (no " + store.file() + ")");
            }
            String env = root.platform().getenv(TokenSource.TOKEN_ENV);
            if (env != null && !env.isBlank()) {
                err.println("note: " + TokenSource.TOKEN_ENV + " is set; commands keep using it");
            }
            return ExitCodes.OK;
        } finally {
            root.console().flush();
        }
    }
}

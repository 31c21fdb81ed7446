package io.tpmkms.cli.auth;

import io.tpmkms.cli.Platform;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * Where the bearer token of every call comes from, in order: the environment variable
 * {@code TPMKMS_TOKEN} (a raw access token, used as is: the CLI cannot renew it), then the cache of
 * {@code tpmkms login}. A cached token that has expired, or will within {@link #MARGIN}, is renewed
 * before use — with the refresh token, or for a client-credentials login by logging in again with
 * the client secret — and the cache is rewritten.
 *
 * <p>One instance serves one command run. It keeps the token it handed out until that, too, comes
 * within the margin of its expiry, so a long paging command renews in the middle and a short one
 * reads the cache once. Thread-safe: gRPC may ask from several threads.
 */
public final class TokenSource {

    /** A token this close to its expiry is renewed first: it could expire on its way to the service. */
    public static final Duration MARGIN = Duration.ofSeconds(30);

    /** The environment variable holding a raw access token; it wins over the cache. */
    public static final String TOKEN_ENV = "TPMKMS_TOKEN";
    /** The environment variable holding a client secret (login with client credentials). */
    public static final String CLIENT_SECRET_ENV = "TPMKMS_CLIENT_SECRET";

    /** What a token was taken from, for messages. */
    public enum Origin { ENVIRONMENT, CACHE }

    /** A token ready to send, and where it came from. */
    public record Token(String value, Origin origin, Instant expiresAt) {
        @Override
        public String toString() {
            return "Token[origin=" + origin + ", expiresAt=" + expiresAt + "]";
        }
    }

    private final Platform platform;
    private final CredentialStore store;
    private final Duration timeout;
    private Token current;

    public TokenSource(Platform platform, CredentialStore store, Duration timeout) {
        this.platform = platform;
        this.store = store;
        this.timeout = timeout;
    }

    /**
     * A token to send now.
     *
     * @throws AuthenticationException no token (not logged in), or the cached login cannot be renewed
     */
    public synchronized Token token() throws AuthenticationException {
        Instant now = platform.now();
        if (current != null && (current.expiresAt() == null || now.plus(MARGIN).isBefore(current.expiresAt()))) {
            return current;
        }
        String fromEnv = platform.getenv(TOKEN_ENV);
        if (fromEnv != null && !fromEnv.isBlank()) {
            current = new Token(fromEnv.strip(), Origin.ENVIRONMENT, null);
            return current;
        }
        Optional<Credentials> cached;
        try {
            cached = store.read();
        } catch (IOException e) {
            throw AuthenticationException.loginNeeded("cannot read the token cache: " + e.getMessage());
        }
        if (cached.isEmpty()) {
            throw AuthenticationException.loginNeeded("not logged in (no " + TOKEN_ENV + " and no " + store.file() + ")");
        }
        Credentials c = cached.get();
        if (c.expiresAt() != null && now.plus(MARGIN).isBefore(c.expiresAt())) {
            current = new Token(c.accessToken(), Origin.CACHE, c.expiresAt());
            return current;
        }
        Credentials renewed = renew(c, now);
        try {
            store.write(renewed);
        } catch (IOException e) {
            throw AuthenticationException.loginNeeded("renewed the token but cannot write " + store.file() + ": "
                    + e.getMessage());
        }
        current = new Token(renewed.accessToken(), Origin.CACHE, renewed.expiresAt());
        return current;
    }

    private Credentials renew(Credentials c, Instant now) throws AuthenticationException {
        OidcClient oidc = OidcClient.of(new OidcClient.Endpoints(c.issuer(), c.tokenEndpoint(), null,
                c.revocationEndpoint()), timeout);
        if (Credentials.CLIENT_CREDENTIALS.equals(c.grant())) {
            String secret = clientSecret(platform, c.clientSecretFile());
            if (secret == null) {
                throw AuthenticationException.loginNeeded("the token of client " + c.clientId() + " expired and its "
                        + "secret is gone (" + (c.clientSecretFile() == null ? CLIENT_SECRET_ENV + " unset"
                        : c.clientSecretFile() + " unreadable") + ")");
            }
            return c.renewed(oidc.clientCredentials(c.clientId(), secret), now);
        }
        if (c.refreshToken() == null) {
            throw AuthenticationException.loginNeeded("the cached token expired at " + c.expiresAt()
                    + " and there is no refresh token");
        }
        if (c.refreshExpiresAt() != null && !now.isBefore(c.refreshExpiresAt())) {
            throw AuthenticationException.loginNeeded("the session at " + c.issuer() + " expired at "
                    + c.refreshExpiresAt());
        }
        return c.renewed(oidc.refresh(c.clientId(), null, c.refreshToken()), now);
    }

    /**
     * The client secret: the first line of {@code file} when one is named, else
     * {@code TPMKMS_CLIENT_SECRET}; {@code null} when neither is there.
     */
    static String clientSecret(Platform platform, String file) {
        if (file != null) {
            try {
                String text = Files.readString(Path.of(file)).strip();
                int eol = text.indexOf('\n');
                return eol < 0 ? text : text.substring(0, eol).strip();
            } catch (NoSuchFileException e) {
                return null;
            } catch (IOException e) {
                return null;
            }
        }
        String env = platform.getenv(CLIENT_SECRET_ENV);
        return env == null || env.isBlank() ? null : env.strip();
    }
}

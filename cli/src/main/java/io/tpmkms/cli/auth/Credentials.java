package io.tpmkms.cli.auth;

import java.net.URI;
import java.time.Instant;

/**
 * What {@code tpmkms login} caches: the issuer and client the tokens came from, the endpoints to
 * renew and revoke them, and the tokens with their expiry. A client-credentials login keeps no
 * secret here, only where the secret is ({@code clientSecretFile}, or the environment when that
 * is {@code null}), so the cache never holds more than the tokens.
 *
 * @param grant            {@code password}, {@code device} or {@code client_credentials}
 * @param refreshToken     {@code null} when none was issued
 * @param refreshExpiresAt {@code null} when unknown
 * @param clientSecretFile for {@code client_credentials}: the secret file given at login, absolute
 */
public record Credentials(String issuer, String clientId, String grant, URI tokenEndpoint, URI revocationEndpoint,
        String accessToken, Instant expiresAt, String refreshToken, Instant refreshExpiresAt,
        String clientSecretFile) {

    public static final String PASSWORD = "password";
    public static final String DEVICE = "device";
    public static final String CLIENT_CREDENTIALS = "client_credentials";

    /** The same login with new tokens; a response without a refresh token keeps the old one. */
    Credentials renewed(OidcClient.Tokens tokens, Instant now) {
        return new Credentials(issuer, clientId, grant, tokenEndpoint, revocationEndpoint, tokens.accessToken(),
                now.plus(tokens.expiresIn()),
                tokens.refreshToken() != null ? tokens.refreshToken() : refreshToken,
                tokens.refreshToken() != null
                        ? (tokens.refreshExpiresIn() == null ? null : now.plus(tokens.refreshExpiresIn()))
                        : refreshExpiresAt,
                clientSecretFile);
    }

    /** Never prints the tokens. */
    @Override
    public String toString() {
        return "Credentials[issuer=" + issuer + ", clientId=" + clientId + ", grant=" + grant + ", expiresAt="
                + expiresAt + "]";
    }
}

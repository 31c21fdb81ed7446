package io.tpmkms.cli.auth;

import io.tpmkms.cli.ExitCodes;

/**
 * Getting or using a token failed before any tpmkms service was asked: no login, a session the
 * identity provider no longer accepts, a refused login, or an identity provider that cannot be
 * reached. The message is one line for the user and never contains a token or a secret.
 */
public final class AuthenticationException extends Exception {

    private final int exitCode;
    private final boolean suggestLogin;

    private AuthenticationException(String message, int exitCode, boolean suggestLogin, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
        this.suggestLogin = suggestLogin;
    }

    /** No usable credentials (none cached, expired, refresh refused): the fix is {@code tpmkms login}. */
    public static AuthenticationException loginNeeded(String message) {
        return new AuthenticationException(message, ExitCodes.DENIED, true, null);
    }

    /** The identity provider refused the login itself (wrong password, denied device request, bad client secret). */
    public static AuthenticationException refused(String message) {
        return new AuthenticationException(message, ExitCodes.DENIED, false, null);
    }

    /** The identity provider did not answer. */
    public static AuthenticationException unreachable(String message, Throwable cause) {
        return new AuthenticationException(message, ExitCodes.UNREACHABLE, false, cause);
    }

    /** The identity provider answered something that is not OAuth 2.0 / OpenID Connect. */
    public static AuthenticationException protocol(String message) {
        return new AuthenticationException(message, ExitCodes.FAILED, false, null);
    }

    public int exitCode() {
        return exitCode;
    }

    /** True when running {@code tpmkms login} is the fix, so the error says so. */
    public boolean suggestLogin() {
        return suggestLogin;
    }
}

package io.tpmkms.cli;

import io.grpc.Status;

/**
 * The process exit codes of {@code tpmkms}, documented in docs/cli.md. Scripts rely on them, so a
 * code never changes meaning; new failure kinds map to {@link #FAILED}. Authentication failures
 * found by the CLI itself (no login, renewal refused) share {@link #DENIED} with the services'
 * UNAUTHENTICATED: it is the same fix. {@link #POLICY_DENY} is an answer, not a failure.
 */
public final class ExitCodes {
    /** The command did what was asked. */
    public static final int OK = 0;
    /** A signature or MAC did not verify, or the service refused or failed the operation. */
    public static final int FAILED = 1;
    /** The command line is wrong: unknown option, missing argument, bad value. */
    public static final int USAGE = 2;
    /** No answer from the service: UNAVAILABLE or DEADLINE_EXCEEDED. */
    public static final int UNREACHABLE = 3;
    /** The key or key version does not exist: NOT_FOUND. */
    public static final int NOT_FOUND = 4;
    /**
     * Not logged in, the login or token renewal was refused, or the service answered
     * UNAUTHENTICATED or PERMISSION_DENIED. The message says which, and whether
     * {@code tpmkms login} is the fix.
     */
    public static final int DENIED = 5;
    /** The request conflicts with the key's state: ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED (etag). */
    public static final int CONFLICT = 6;
    /**
     * {@code tpmkms policy check}: the policy service decided DENY. Not an error: the question was
     * answered. Distinct from {@link #DENIED}, which means the caller itself was refused.
     */
    public static final int POLICY_DENY = 7;

    private ExitCodes() {
    }

    public static int forStatus(Status.Code code) {
        return switch (code) {
            case OK -> OK;
            case UNAVAILABLE, DEADLINE_EXCEEDED -> UNREACHABLE;
            case NOT_FOUND -> NOT_FOUND;
            case UNAUTHENTICATED, PERMISSION_DENIED -> DENIED;
            case ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED -> CONFLICT;
            default -> FAILED;
        };
    }
}

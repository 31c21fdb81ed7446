package io.tpmkms.cli;

/**
 * A failure the CLI finds itself, before or instead of a call (an import job that is not ACTIVE,
 * a wrapping key whose attestation does not verify, a key file in a form it refuses): one line on
 * stderr, {@code error: MESSAGE}, and the exit code given, one of {@link ExitCodes}. Usage errors
 * found after parsing use {@link KmsCommand#usage} instead.
 */
public final class CommandException extends RuntimeException {

    private final int exitCode;

    public CommandException(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }
}

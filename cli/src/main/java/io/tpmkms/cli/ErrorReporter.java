package io.tpmkms.cli;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.cli.auth.AuthenticationException;
import io.tpmkms.cli.auth.TokenSource;
import io.tpmkms.cli.connection.KmsConnection;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.util.Optional;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.IParameterExceptionHandler;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * Turns every failure into one line on stderr and an exit code from {@link ExitCodes}. gRPC
 * errors show the service's message, the status code and the {@code ErrorInfo.reason}; stack
 * traces and details only with {@code --verbose}.
 *
 * <p>Authentication failures — no token, a renewal the identity provider refused, or a service
 * answering UNAUTHENTICATED — end with what to do about it: run {@code tpmkms login} (or, when the
 * token came from {@code TPMKMS_TOKEN}, set a fresh one).
 */
final class ErrorReporter implements IExecutionExceptionHandler, IParameterExceptionHandler {

    private final TpmkmsCommand root;

    ErrorReporter(TpmkmsCommand root) {
        this.root = root;
    }

    @Override
    public int handleParseException(ParameterException ex, String[] args) {
        PrintStream err = root.console().err();
        err.println("error: " + ex.getMessage());
        UnmatchedArgumentException.printSuggestions(ex, err);
        err.println("Try '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help' for usage.");
        return ExitCodes.USAGE;
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine commandLine, ParseResult parseResult) {
        PrintStream err = root.console().err();
        int code;
        if (ex instanceof AuthenticationException e) {
            err.println("error: " + e.getMessage() + (e.suggestLogin() ? loginHint() : ""));
            code = e.exitCode();
        } else if (ex instanceof CommandException e) {
            err.println("error: " + e.getMessage());
            code = e.exitCode();
        } else if (ex instanceof StatusRuntimeException sre) {
            KmsConnection.Service service = commandLine.getCommand() instanceof KmsCommand command
                    ? command.service() : KmsConnection.Service.KEY;
            code = reportStatus(sre, service, err);
        } else if (ex instanceof io.tpmkms.tls.InvalidTlsFileException e) {
            err.println("error: TLS: " + e.getMessage());
            code = ExitCodes.USAGE;
        } else if (ex instanceof NoSuchFileException e) {
            err.println("error: no such file: " + e.getFile());
            code = ExitCodes.USAGE;
        } else if (ex instanceof AccessDeniedException e) {
            err.println("error: permission denied: " + e.getFile());
            code = ExitCodes.FAILED;
        } else if (ex instanceof IOException e) {
            err.println("error: " + e);
            code = ExitCodes.FAILED;
        } else {
            err.println("error: unexpected " + ex + (root.verbose() ? "" : " (--verbose for details)"));
            code = ExitCodes.FAILED;
        }
        if (root.verbose()) {
            ex.printStackTrace(err);
        }
        return code;
    }

    private int reportStatus(StatusRuntimeException ex, KmsConnection.Service service, PrintStream err) {
        String address = root.address(service);
        Status status = ex.getStatus();
        if (status.getCause() instanceof AuthenticationException e) {
            // The call never left: no token, or it could not be renewed.
            err.println("error: " + e.getMessage() + (e.suggestLogin() ? loginHint() : ""));
            return e.exitCode();
        }
        Optional<ErrorInfo> info = errorInfo(ex);
        if (status.getCode() == Status.Code.UNAVAILABLE && info.isEmpty()) {
            String tls = io.tpmkms.cli.connection.TlsDiagnosis.explain(ex,
                    "the " + service.description() + " at " + address, root.clientTls(service), address);
            if (tls != null) {
                err.println("error: " + tls + " (" + status.getCode() + ")");
                return ExitCodes.forStatus(status.getCode());
            }
        }
        String what = switch (status.getCode()) {
            // With an ErrorInfo the service itself answered (e.g. its database is down): show its message.
            case UNAVAILABLE -> info.isPresent() ? describe(status)
                    : "cannot reach the " + service.description() + " at " + address + ": " + describe(status);
            case DEADLINE_EXCEEDED -> "no answer from " + address + " within " + root.timeout().toSeconds()
                    + "s (--timeout)";
            default -> describe(status);
        };
        String reason = info.map(i -> ", reason " + i.getReason()).orElse("");
        String hint = status.getCode() == Status.Code.UNAUTHENTICATED ? loginHint()
                : status.getCode() == Status.Code.PERMISSION_DENIED && service == KmsConnection.Service.AUDIT
                ? AUDITOR_HINT : "";
        err.println("error: " + what + " (" + status.getCode() + reason + ")" + hint);
        if (root.verbose() && info.isPresent()) {
            err.println("  domain: " + info.get().getDomain());
            info.get().getMetadataMap().forEach((k, v) -> err.println("  " + k + ": " + v));
        }
        return ExitCodes.forStatus(status.getCode());
    }

    /** Reading the trail is the auditor's (docs/authorization.md): say who can grant it. */
    static final String AUDITOR_HINT = "; reading the audit trail needs the auditor role: ask an admin for a binding"
            + " (tpmkms bindings create --role auditor --user <subject> --deployment)"
            + " or the realm role tpmkms-auditor";

    /** What to do when not authenticated; depends on where the token came from. */
    private String loginHint() {
        String env = root.platform().getenv(TokenSource.TOKEN_ENV);
        return env != null && !env.isBlank()
                ? "; the token comes from " + TokenSource.TOKEN_ENV + ": set a valid one, or unset it and run 'tpmkms login'"
                : "; run 'tpmkms login'";
    }

    private static String describe(Status status) {
        if (status.getDescription() != null && !status.getDescription().isBlank()) {
            String d = status.getDescription();
            Throwable cause = status.getCause();
            return cause != null && cause.getMessage() != null ? d + ": " + cause.getMessage() : d;
        }
        if (status.getCause() != null && status.getCause().getMessage() != null) {
            return status.getCause().getMessage();
        }
        return status.getCode().name().toLowerCase().replace('_', ' ');
    }

    static Optional<ErrorInfo> errorInfo(Throwable t) {
        com.google.rpc.Status status = StatusProto.fromThrowable(t);
        if (status == null) {
            return Optional.empty();
        }
        for (Any detail : status.getDetailsList()) {
            if (detail.is(ErrorInfo.class)) {
                try {
                    return Optional.of(detail.unpack(ErrorInfo.class));
                } catch (InvalidProtocolBufferException e) {
                    return Optional.empty();
                }
            }
        }
        return Optional.empty();
    }
}

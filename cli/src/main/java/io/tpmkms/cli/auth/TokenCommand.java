package io.tpmkms.cli.auth;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.TpmkmsCommand;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms token print}: the one place the CLI prints a token, for scripts that call the
 * services with other tools ({@code grpcurl -H "authorization: Bearer $(tpmkms token print)"}).
 * The token is a credential: whoever reads the output can act as you until it expires.
 */
@Command(name = "token", description = "The current access token, for scripts (SENSITIVE).")
public final class TokenCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            TokenCommand.Print.class,
    };


    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    /** Prints the access token on stdout, renewed first when it is about to expire. */
    @Command(name = "print", description = {
            "Print the access token every command would send (renewed first if about to expire).",
            "SENSITIVE: anyone who reads it can act as you until it expires. Do not log it."})
    static final class Print implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
            root.checkTimeout();
            try {
                root.console().out().println(root.tokens().token().value());
                return ExitCodes.OK;
            } finally {
                root.console().flush();
            }
        }
    }
}

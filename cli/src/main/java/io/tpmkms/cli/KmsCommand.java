package io.tpmkms.cli;

import io.tpmkms.cli.connection.KmsConnection;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * A subcommand that talks to the key service (or, overriding {@link #service()}, to the audit
 * service): it gets a {@link Session} with an open connection,
 * the console and the output mode, and returns an exit code. Exceptions go to the
 * {@link ErrorReporter}.
 */
public abstract class KmsCommand implements Callable<Integer> {

    @Spec
    protected CommandSpec spec;

    @Override
    public final Integer call() throws Exception {
        TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
        if (offline()) {
            try {
                return run(new Session(null, root.console(), root.json()));
            } finally {
                root.console().flush();
            }
        }
        try (KmsConnection connection = root.connect(service())) {
            return run(new Session(connection, root.console(), root.json()));
        } finally {
            root.console().flush();
        }
    }

    protected abstract int run(Session session) throws Exception;

    /** The service this command talks to; errors name it and its address. */
    protected KmsConnection.Service service() {
        return KmsConnection.Service.KEY;
    }

    /**
     * True when this run needs no key service (decided from the parsed options): no connection is
     * opened and {@link Session#keys()} fails.
     */
    protected boolean offline() {
        return false;
    }

    /** A usage error found after parsing (conflicting options and the like): exit 2. */
    protected ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }
}

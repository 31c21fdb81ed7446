package io.tpmkms.cli;

import io.tpmkms.cli.connection.KmsConnection;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
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
        DescriptorLoader descriptors = DescriptorLoader.start(service());
        try (KmsConnection connection = root.connect(service())) {
            // the messages of the call are built on this thread, after the descriptors are complete
            descriptors.await();
            return run(new Session(connection, root.console(), root.json()));
        } finally {
            root.console().flush();
        }
    }

    /**
     * Builds the protobuf file descriptors of a service (the first message of a call initialises all of
     * them: a few tens of milliseconds of static initialisers) on another thread while the command's
     * thread opens the connection (ADR 0018, point 6). The two touch disjoint libraries until
     * {@link #await}: protobuf's runtime and the service's descriptor class there; gRPC, OkHttp and the
     * token cache here; so no class is initialised from both threads at once. Each message class's own
     * static initialiser still runs on the command's thread, after {@link #await}.
     */
    static final class DescriptorLoader {
        private final Thread thread;
        private volatile Throwable failure;

        private DescriptorLoader(KmsConnection.Service service) {
            thread = new Thread(() -> {
                try {
                    switch (service) {
                        case KEY -> io.tpmkms.proto.key.v1.KeyServiceProto.getDescriptor();
                        case AUDIT -> io.tpmkms.proto.audit.v1.AuditServiceProto.getDescriptor();
                        case POLICY -> io.tpmkms.proto.policy.v1.PolicyServiceProto.getDescriptor();
                    }
                } catch (Throwable t) {
                    // a failed static initialiser is not run again: its cause is passed on by await()
                    failure = t;
                }
            }, "tpmkms-descriptors");
            thread.setDaemon(true);
        }

        static DescriptorLoader start(KmsConnection.Service service) {
            DescriptorLoader loader = new DescriptorLoader(service);
            loader.thread.start();
            return loader;
        }

        /** Waits for the descriptors (an interrupt does not cut it short: it is kept); rethrows their failure. */
        void await() {
            boolean interrupted = false;
            while (true) {
                try {
                    thread.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            Throwable t = failure;
            if (t instanceof Error error) {
                throw error;
            }
            if (t instanceof RuntimeException runtime) {
                throw runtime;
            }
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

    /**
     * The bytes of the input file an option names ({@code -}: stdin). A file that is missing, unreadable
     * or a directory is a usage error naming the option and the file (exit 2); nothing is sent.
     */
    protected byte[] readInput(Session s, String option, String file) {
        try {
            return s.read(file);
        } catch (NoSuchFileException e) {
            throw usage(option + " " + file + ": no such file");
        } catch (AccessDeniedException e) {
            throw usage(option + " " + file + ": permission denied");
        } catch (IOException e) {
            throw usage(option + " " + file + ": cannot read it (" + e.getMessage() + ")");
        }
    }

    /** {@link #readInput}, and an empty file is a usage error too. */
    protected byte[] readNonEmptyInput(Session s, String option, String file) {
        byte[] data = readInput(s, option, file);
        if (data.length == 0) {
            throw usage(option + " " + file + ": the file is empty");
        }
        return data;
    }

    /** A usage error found after parsing (conflicting options and the like): exit 2. */
    protected ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }
}

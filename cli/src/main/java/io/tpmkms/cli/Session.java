package io.tpmkms.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.connection.KmsConnection;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * What one command run works with: the stub, the console and the output mode. Files named
 * {@code -} are stdin or stdout.
 */
public final class Session {

    /** The largest plaintext, data or MAC input the service takes in one call. */
    public static final int MAX_INPUT_BYTES = 64 * 1024;

    private static final JsonFormat.Printer JSON = JsonFormat.printer().alwaysPrintFieldsWithNoPresence();

    private final KmsConnection connection;
    private final Console console;
    private final boolean json;

    Session(KmsConnection connection, Console console, boolean json) {
        this.connection = connection;
        this.console = console;
        this.json = json;
    }

    public KeyServiceGrpc.KeyServiceBlockingStub keys() {
        if (connection == null) {
            throw new IllegalStateException("this command runs offline: it has no connection to the key service");
        }
        return connection.keys();
    }

    public AuditServiceGrpc.AuditServiceBlockingStub audit() {
        if (connection == null) {
            throw new IllegalStateException("this command runs offline: it has no connection to the audit service");
        }
        return connection.audit();
    }

    public PolicyServiceGrpc.PolicyServiceBlockingStub policy() {
        if (connection == null) {
            throw new IllegalStateException("this command runs offline: it has no connection to the policy service");
        }
        return connection.policy();
    }

    public boolean json() {
        return json;
    }

    public PrintStream out() {
        return console.out();
    }

    public PrintStream err() {
        return console.err();
    }

    /** Stdout for raw bytes, after flushing what was printed to it as text. */
    public OutputStream stdout() {
        console.out().flush();
        return console.stdout();
    }

    public void printJson(MessageOrBuilder message) throws InvalidProtocolBufferException {
        console.out().println(JSON.print(message));
    }

    /** The message in the protobuf JSON mapping, as {@link #printJson} prints it. */
    public static String json(MessageOrBuilder message) throws InvalidProtocolBufferException {
        return JSON.print(message);
    }

    public static boolean isStdio(String name) {
        return name == null || name.equals("-");
    }

    public byte[] read(String source) throws IOException {
        return isStdio(source) ? console.stdin().readAllBytes() : Files.readAllBytes(Path.of(source));
    }

    /** Writes bytes as they are: to stdout for {@code -}, else to the file (replaced). */
    public void write(String target, byte[] data) throws IOException {
        if (isStdio(target)) {
            console.out().flush();
            OutputStream out = console.stdout();
            out.write(data);
            out.flush();
        } else {
            Files.write(Path.of(target), data);
        }
    }

    /**
     * Writes key material or plaintext. A new file is created readable by its owner only (where the
     * file system has POSIX permissions); an existing file keeps its permissions.
     */
    public void writeSecret(String target, byte[] data) throws IOException {
        if (isStdio(target)) {
            write(target, data);
            return;
        }
        Path path = Path.of(target);
        if (!Files.exists(path)) {
            try {
                Files.createFile(path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            } catch (UnsupportedOperationException e) {
                Files.createFile(path);
            }
        }
        Files.write(path, data, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
    }
}

package io.tpmkms.cli;

import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * The process's standard streams. {@code stdout} takes raw bytes (ciphertexts, signatures, data
 * keys); {@code out} is the same stream for text. Tests pass in-memory streams; nothing in the CLI
 * touches {@link System#out} directly.
 */
public record Console(InputStream stdin, OutputStream stdout, PrintStream out, PrintStream err) {

    public static Console system() {
        return new Console(System.in, System.out, System.out, System.err);
    }

    public static Console of(InputStream stdin, OutputStream stdout, OutputStream stderr) {
        return new Console(stdin, stdout, new PrintStream(stdout, false, StandardCharsets.UTF_8),
                new PrintStream(stderr, true, StandardCharsets.UTF_8));
    }

    public void flush() {
        out.flush();
        err.flush();
    }
}

package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.Session;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** Options shared by the commands that use keys, as picocli mixins. */
final class CryptoOptions {

    private CryptoOptions() {
    }

    static final class Input {
        @Option(names = "--in", paramLabel = "FILE", defaultValue = "-", description = "Input file; - for stdin (default).")
        String in;

        /** Reads the input, refusing more than the service takes in one call. */
        byte[] read(Session s, CommandSpec spec) throws IOException {
            byte[] data = s.read(in);
            if (data.length > Session.MAX_INPUT_BYTES) {
                throw new ParameterException(spec.commandLine(), "input is " + data.length
                        + " bytes; the service takes at most 64 KiB per call (encrypt a data key instead: 'data-key')");
            }
            return data;
        }
    }

    static final class Output {
        @Option(names = "--out", paramLabel = "FILE", defaultValue = "-", description = "Output file; - for stdout (default).")
        String out;

        boolean toFile() {
            return !Session.isStdio(out);
        }
    }

    static final class Aad {
        @Spec(Spec.Target.MIXEE)
        CommandSpec spec;

        @Option(names = "--aad", paramLabel = "TEXT", description = "Additional authenticated data, as UTF-8 text.")
        String text;

        @Option(names = "--aad-file", paramLabel = "FILE", description = "Additional authenticated data from a file.")
        Path file;

        ByteString bytes() throws IOException {
            if (text != null && file != null) {
                throw new ParameterException(spec.commandLine(), "--aad and --aad-file cannot be combined");
            }
            if (text != null) {
                return ByteString.copyFrom(text, StandardCharsets.UTF_8);
            }
            return file == null ? ByteString.EMPTY : ByteString.copyFrom(Files.readAllBytes(file));
        }
    }
}

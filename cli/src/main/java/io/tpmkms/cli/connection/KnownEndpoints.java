package io.tpmkms.cli.connection;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.Properties;

/**
 * The CA bundle remembered per service address ({@code endpoints.properties} in the CLI's
 * configuration directory): once a command has named {@code --ca-file} for an address, later
 * commands to that address use TLS with that CA without being told again. Not a secret (a CA
 * certificate), but written like the token cache: whole, by rename.
 */
public final class KnownEndpoints {
    public static final String FILE_NAME = "endpoints.properties";

    private final Path file;

    public KnownEndpoints(Path file) {
        this.file = file;
    }

    /** The CA bundle remembered for {@code address}, if any. */
    public Optional<Path> caFile(String address) {
        String v = load().getProperty(address + ".ca-file");
        return v == null || v.isBlank() ? Optional.empty() : Optional.of(Path.of(v));
    }

    /** Remembers {@code caFile} (made absolute) for {@code address}; a failure to write is not an error of the command. */
    public void remember(String address, Path caFile) {
        Properties p = load();
        String value = caFile.toAbsolutePath().normalize().toString();
        if (value.equals(p.getProperty(address + ".ca-file"))) return;
        p.setProperty(address + ".ca-file", value);
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, ".endpoints", ".tmp");
            try (OutputStream out = Files.newOutputStream(tmp)) {
                p.store(out, "tpmkms CLI: the CA bundle of each service address (--ca-file)");
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            // remembering is a convenience: the command itself goes on
        }
    }

    private Properties load() {
        Properties p = new Properties();
        if (!Files.isRegularFile(file)) return p;
        try (InputStream in = Files.newInputStream(file)) {
            p.load(in);
        } catch (IOException | IllegalArgumentException e) {
            // an unreadable file remembers nothing
        }
        return p;
    }
}

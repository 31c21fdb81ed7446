package io.tpmkms.cli.auth;

import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tpmkms.cli.Platform;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Optional;
import java.util.Set;

/**
 * The token cache: {@code credentials.json} in the CLI's configuration directory ({@link #directory}:
 * {@code TPMKMS_CONFIG_DIR}, else {@code $XDG_CONFIG_HOME/tpmkms}, else {@code $HOME/.config/tpmkms}).
 *
 * <p>The file is readable by its owner only (0600) from the moment it exists: it is written to a
 * temporary file created with that mode in the same directory and then renamed over the old one,
 * so a reader never sees half a file and no one else ever sees the tokens. A directory the CLI
 * creates gets mode 0700; an existing one (say a shared {@code TPMKMS_CONFIG_DIR}) is left as it
 * is. Two CLI processes refreshing at once both write a valid file; the last one wins.
 */
public final class CredentialStore {

    static final String FILE_NAME = "credentials.json";
    private static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx------");

    private final Path file;

    public CredentialStore(Path file) {
        this.file = file;
    }

    /** The store of this environment, in {@link #directory}. */
    public static CredentialStore of(Platform platform) {
        return new CredentialStore(directory(platform).resolve(FILE_NAME));
    }

    /**
     * The CLI's configuration directory: {@code TPMKMS_CONFIG_DIR} when set; else {@code tpmkms} under
     * {@code XDG_CONFIG_HOME} when that is an absolute path (the XDG Base Directory rule: a relative one
     * is ignored); else {@code .config/tpmkms} under {@code HOME}; else under Java's {@code user.home}
     * (only when {@code HOME} is unset: a process started with another {@code HOME}, such as
     * {@code sudo -H} or a test, gets that one).
     */
    public static Path directory(Platform platform) {
        String dir = platform.getenv("TPMKMS_CONFIG_DIR");
        if (dir != null && !dir.isBlank()) {
            return Path.of(dir);
        }
        String xdg = platform.getenv("XDG_CONFIG_HOME");
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) {
            return Path.of(xdg, "tpmkms");
        }
        String home = platform.getenv("HOME");
        if (home == null || home.isBlank()) {
            home = System.getProperty("user.home");
        }
        return Path.of(home, ".config", "tpmkms");
    }

    public Path file() {
        return file;
    }

    /** The cached login, or empty when there is none. A damaged file is an error, not "logged out". */
    public Optional<Credentials> read() throws IOException {
        if (!Files.exists(file)) {
            return Optional.empty();
        }
        String text = Files.readString(file, StandardCharsets.UTF_8);
        try {
            JsonObject o = JsonParser.parseString(text).getAsJsonObject();
            String issuer = OidcClient.string(o, "issuer");
            String clientId = OidcClient.string(o, "client_id");
            String token = OidcClient.string(o, "access_token");
            String endpoint = OidcClient.string(o, "token_endpoint");
            if (issuer == null || clientId == null || token == null || endpoint == null) {
                throw new IOException(file + " lacks issuer, client_id, token_endpoint or access_token; "
                        + "run 'tpmkms login' again");
            }
            String revocation = OidcClient.string(o, "revocation_endpoint");
            return Optional.of(new Credentials(issuer, clientId, OidcClient.string(o, "grant"), URI.create(endpoint),
                    revocation == null ? null : URI.create(revocation), token, instant(o, "expires_at"),
                    OidcClient.string(o, "refresh_token"), instant(o, "refresh_expires_at"),
                    OidcClient.string(o, "client_secret_file")));
        } catch (JsonParseException | IllegalStateException | IllegalArgumentException | DateTimeParseException e) {
            throw new IOException(file + " is not a tpmkms credentials file (" + e.getMessage()
                    + "); run 'tpmkms login' again");
        }
    }

    public void write(Credentials c) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("issuer", c.issuer());
        o.addProperty("client_id", c.clientId());
        o.addProperty("grant", c.grant());
        o.addProperty("token_endpoint", c.tokenEndpoint().toString());
        if (c.revocationEndpoint() != null) {
            o.addProperty("revocation_endpoint", c.revocationEndpoint().toString());
        }
        o.addProperty("access_token", c.accessToken());
        o.addProperty("expires_at", c.expiresAt().toString());
        if (c.refreshToken() != null) {
            o.addProperty("refresh_token", c.refreshToken());
        }
        if (c.refreshExpiresAt() != null) {
            o.addProperty("refresh_expires_at", c.refreshExpiresAt().toString());
        }
        if (c.clientSecretFile() != null) {
            o.addProperty("client_secret_file", c.clientSecretFile());
        }
        Path dir = file.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir)) {
            createPrivateDirectories(dir);
        }
        Path tmp;
        try {
            tmp = Files.createTempFile(dir, ".credentials", ".tmp", PosixFilePermissions.asFileAttribute(FILE_MODE));
        } catch (UnsupportedOperationException e) {
            tmp = Files.createTempFile(dir, ".credentials", ".tmp");
        }
        try {
            Files.writeString(tmp, o + "\n", StandardCharsets.UTF_8);
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Deletes the cache; false when there was none. */
    public boolean delete() throws IOException {
        return Files.deleteIfExists(file);
    }

    private static void createPrivateDirectories(Path dir) throws IOException {
        Path parent = dir.getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            createPrivateDirectories(parent);
        }
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(DIR_MODE));
        } catch (UnsupportedOperationException e) {
            Files.createDirectory(dir);
        }
    }

    private static Instant instant(JsonObject o, String name) {
        String s = OidcClient.string(o, name);
        return s == null ? null : Instant.parse(s);
    }
}

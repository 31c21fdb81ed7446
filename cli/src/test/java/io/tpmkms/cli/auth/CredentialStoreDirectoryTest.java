package io.tpmkms.cli.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.tpmkms.cli.Platform;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Where the CLI keeps its token cache: TPMKMS_CONFIG_DIR, then XDG_CONFIG_HOME, then HOME. */
class CredentialStoreDirectoryTest {

    @Test
    void configDir_overridesEverything() {
        assertEquals(Path.of("/srv/cfg"), CredentialStore.directory(env(Map.of("TPMKMS_CONFIG_DIR", "/srv/cfg",
                "XDG_CONFIG_HOME", "/x", "HOME", "/home/a"))));
    }

    @Test
    void xdgConfigHome_whenAbsolute() {
        assertEquals(Path.of("/x/tpmkms"), CredentialStore.directory(env(Map.of("XDG_CONFIG_HOME", "/x",
                "HOME", "/home/a"))));
    }

    @Test
    void relativeXdgConfigHome_isIgnored() {
        assertEquals(Path.of("/home/a/.config/tpmkms"), CredentialStore.directory(env(Map.of(
                "XDG_CONFIG_HOME", "relative/dir", "HOME", "/home/a"))));
    }

    @Test
    void home_notJavasUserHome() {
        assertEquals(Path.of("/home/b/.config/tpmkms"), CredentialStore.directory(env(Map.of("HOME", "/home/b"))));
        assertEquals(Path.of("/home/b/.config/tpmkms/credentials.json"),
                CredentialStore.of(env(Map.of("HOME", "/home/b"))).file());
    }

    @Test
    void noHome_fallsBackToUserHome() {
        assertEquals(Path.of(System.getProperty("user.home"), ".config", "tpmkms"),
                CredentialStore.directory(env(Map.of())));
    }

    private static Platform env(Map<String, String> vars) {
        return new Platform() {
            @Override
            public String getenv(String name) {
                return vars.get(name);
            }

            @Override
            public Instant now() {
                return Instant.EPOCH;
            }

            @Override
            public void sleep(Duration duration) {
            }

            @Override
            public char[] readPassword(String prompt) {
                return null;
            }
        };
    }
}

package io.tpmkms.cli;

import java.time.Duration;
import java.time.Instant;

/**
 * What the CLI takes from the machine besides its streams: environment variables, the clock,
 * sleeping and the terminal's password prompt. Tests pass a fake so that the token cache, token
 * expiry and the device-grant polling can be checked without real time passing and without
 * touching the user's environment; nothing else in the CLI calls {@link System#getenv} directly.
 */
public interface Platform {

    /** The environment variable, or {@code null} when unset. */
    String getenv(String name);

    Instant now();

    /** Waits; an interrupt ends the wait early and keeps the thread's interrupt flag. */
    void sleep(Duration duration);

    /**
     * Reads a password from the terminal without echo, or returns {@code null} when there is no
     * terminal (stdin or stdout redirected).
     */
    char[] readPassword(String prompt);

    /** The real process: {@link System#getenv}, the system clock, {@link System#console()}. */
    static Platform system() {
        return new Platform() {
            @Override
            public String getenv(String name) {
                return System.getenv(name);
            }

            @Override
            public Instant now() {
                return Instant.now();
            }

            @Override
            public void sleep(Duration duration) {
                try {
                    Thread.sleep(duration.toMillis());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }

            @Override
            public char[] readPassword(String prompt) {
                java.io.Console terminal = System.console();
                return terminal == null ? null : terminal.readPassword("%s", prompt);
            }
        };
    }
}

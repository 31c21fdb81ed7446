package io.tpmkms.cli;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The machine as the tests want it: an environment of their own (never the real one), a clock
 * that only moves when told or when the CLI sleeps (each sleep is recorded and advances it), and
 * a terminal whose password prompt answers from a queue ({@code null}: no terminal).
 */
final class FakePlatform implements Platform {

    final Map<String, String> env = new HashMap<>();
    final List<Duration> sleeps = new ArrayList<>();
    final List<String> prompts = new ArrayList<>();
    final Deque<String> passwords = new ArrayDeque<>();
    Instant now = Instant.parse("2030-01-24T12:00:00Z");

    @Override
    public synchronized String getenv(String name) {
        return env.get(name);
    }

    @Override
    public synchronized Instant now() {
        return now;
    }

    @Override
    public synchronized void sleep(Duration duration) {
        sleeps.add(duration);
        now = now.plus(duration);
    }

    @Override
    public synchronized char[] readPassword(String prompt) {
        prompts.add(prompt);
        String p = passwords.poll();
        return p == null ? null : p.toCharArray();
    }

    synchronized void advance(Duration d) {
        now = now.plus(d);
    }
}

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
public final class FakePlatform implements Platform {

    public final Map<String, String> env = new HashMap<>();
    public final List<Duration> sleeps = new ArrayList<>();
    public final List<String> prompts = new ArrayList<>();
    public final Deque<String> passwords = new ArrayDeque<>();
    public Instant now = Instant.parse("2030-01-24T12:00:00Z");

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

    public synchronized void advance(Duration d) {
        now = now.plus(d);
    }
}

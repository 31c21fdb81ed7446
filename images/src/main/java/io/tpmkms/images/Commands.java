package io.tpmkms.images;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Runs a host tool (ldd, jlink, git) and returns what it printed. */
final class Commands {
  private Commands() {}

  /** Runs {@code command} in {@code dir}; stdout and stderr together; fails unless it exits 0. */
  static String run(Path dir, List<String> command) throws IOException {
    Result result = tryRun(dir, command);
    if (result.exitCode != 0) {
      throw new IOException(
          String.join(" ", command) + " exited with " + result.exitCode + ":\n" + result.output.strip());
    }
    return result.output;
  }

  /** Runs {@code command}; the exit code is the caller's to judge. */
  static Result tryRun(Path dir, List<String> command) throws IOException {
    return tryRun(dir, command, Map.of());
  }

  /** Runs {@code command} with {@code env} added to this process's environment. */
  static Result tryRun(Path dir, List<String> command, Map<String, String> env) throws IOException {
    ProcessBuilder builder = new ProcessBuilder(command);
    builder.environment().putAll(env);
    Process process = builder
        .directory(dir.toFile())
        .redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
        .start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      return new Result(process.waitFor(), output);
    } catch (InterruptedException ex) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while running " + command.get(0), ex);
    }
  }

  record Result(int exitCode, String output) {}
}

package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The shell blocks of README.md's "Five minutes with the CLI", run as written, one block at a time, in a
 * bash under a pseudo-terminal (the CLI prompts for the password there, as it does for a user; the
 * password comes from the step's own {@code # password: X} comment).
 *
 * <p>What each step's comment promises is checked against the step's output (stdout and stderr):
 * <ul>
 *   <li>every step exits 0 — a step that fails on purpose is written {@code cmd; echo "exit $?"};
 *   <li>{@code exit N} in the comment: the output says {@code exit N};
 *   <li>{@code prints: TEXT} (up to the end of the comment or a " ("): the output contains TEXT;
 *   <li>every all-capital word of four or more letters (a status code, reason, decision or state,
 *       e.g. {@code PERMISSION_DENIED}, {@code DENY}, {@code DISABLED}; not the acronyms in
 *       {@code ACRONYMS}): the output contains it, in any case (the CLI prints states in lower case).
 * </ul>
 */
final class ReadmeWalkthrough {
  private static final Pattern CAPS = Pattern.compile("\\b[A-Z][A-Z_]{3,}\\b");
  private static final java.util.Set<String> ACRONYMS = java.util.Set.of("JSON", "HTTP", "GRPC", "HMAC");
  private static final Pattern EXIT = Pattern.compile("\\bexit (\\d+)\\b");
  private static final Pattern PRINTS = Pattern.compile("prints: (.+?)(?: \\(|$)");
  private static final Pattern PASSWORD = Pattern.compile("password: (\\S+)");

  record Step(String command, String comment) {}

  /** One step's result: its output and exit status. */
  record Ran(Step step, String output, int status) {}

  /** The ```sh blocks of the README section, in order. */
  static List<List<Step>> blocks(Path readme) throws IOException {
    List<String> lines = Files.readAllLines(readme, StandardCharsets.UTF_8);
    List<List<Step>> blocks = new ArrayList<>();
    boolean inSection = false;
    List<Step> block = null;
    for (String line : lines) {
      if (line.startsWith("## ")) inSection = line.equals("## Five minutes with the CLI");
      if (!inSection) continue;
      if (block == null && line.equals("```sh")) {
        block = new ArrayList<>();
      } else if (block != null && line.equals("```")) {
        blocks.add(block);
        block = null;
      } else if (block != null && !line.isBlank()) {
        int hash = line.indexOf(" #");
        String command = (hash < 0 ? line : line.substring(0, hash)).strip();
        String comment = hash < 0 ? "" : line.substring(hash + 2).strip();
        if (!command.isEmpty()) block.add(new Step(command, comment));
      }
    }
    return blocks;
  }

  /**
   * Runs one block in {@code workDir} (where {@code ./tpmkms} is a link to the repository's) with
   * {@code env}, checks every step's promises, and returns the results.
   */
  static List<Ran> run(List<Step> block, Path workDir, Map<String, String> env) throws Exception {
    StringBuilder script = new StringBuilder("set +e\ncd '").append(workDir).append("'\n");
    StringBuilder passwords = new StringBuilder();
    for (int i = 0; i < block.size(); i++) {
      Step s = block.get(i);
      script.append("echo '@@step ").append(i).append("'\n").append(s.command()).append('\n')
          .append("echo \"@@status ").append(i).append(" $?\"\n");
      Matcher pw = PASSWORD.matcher(s.comment());
      if (s.command().contains(" login ") && pw.find()) passwords.append(pw.group(1)).append('\n');
    }
    script.append("echo '@@done'\n");
    Path file = Files.writeString(workDir.resolve("walkthrough-block.sh"), script);
    ProcessBuilder pb = new ProcessBuilder("script", "-qefc", "bash " + file, "/dev/null")
        .directory(workDir.toFile()).redirectErrorStream(true);
    pb.environment().putAll(env);
    Process p = pb.start();
    OutputStream stdin = p.getOutputStream();
    stdin.write(passwords.toString().getBytes(StandardCharsets.UTF_8));
    stdin.flush();   // left open: an end of input would reach the terminal of the steps as a hang-up
    byte[] out;
    try {
      boolean done = p.waitFor(600, TimeUnit.SECONDS);
      if (!done) p.destroyForcibly();
      out = p.getInputStream().readAllBytes();
      assertTrue(done, "walkthrough block did not finish in 600 s:\n" + new String(out, StandardCharsets.UTF_8));
    } finally {
      stdin.close();
    }
    String text = new String(out, StandardCharsets.UTF_8).replace("\r", "");
    List<Ran> results = new ArrayList<>();
    for (int i = 0; i < block.size(); i++) {
      Step s = block.get(i);
      int from = text.indexOf("@@step " + i + "\n");
      Matcher status = Pattern.compile("@@status " + i + " (\\d+)\n").matcher(text);
      assertTrue(from >= 0 && status.find(from), "step " + i + " (" + s.command() + ") did not run:\n" + text);
      String output = text.substring(from + ("@@step " + i + "\n").length(), status.start());
      Ran ran = new Ran(s, output, Integer.parseInt(status.group(1)));
      check(ran);
      results.add(ran);
    }
    assertTrue(text.contains("@@done"), text);
    return results;
  }

  static void check(Ran r) {
    String what = "README step `" + r.step().command() + "`  # " + r.step().comment() + "\noutput:\n" + r.output();
    assertEquals(0, r.status(), "exit status of " + what);
    Matcher exit = EXIT.matcher(r.step().comment());
    while (exit.find()) assertTrue(r.output().contains("exit " + exit.group(1)), "expected 'exit " + exit.group(1) + "' from " + what);
    Matcher prints = PRINTS.matcher(r.step().comment());
    if (prints.find()) assertTrue(r.output().contains(prints.group(1)), "expected '" + prints.group(1) + "' from " + what);
    Matcher caps = CAPS.matcher(r.step().comment());
    String lower = r.output().toLowerCase(java.util.Locale.ROOT);
    while (caps.find()) {
      if (!ACRONYMS.contains(caps.group())) {
        assertTrue(lower.contains(caps.group().toLowerCase(java.util.Locale.ROOT)), "expected " + caps.group() + " from " + what);
      }
    }
  }

  private ReadmeWalkthrough() {}
}

package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.system.ReadmeWalkthrough.Step;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * A new user's first hour, through the real {@code ./run} (Keycloak, audit, policy and key services, their
 * PostgreSQL servers and, with {@code --tpm}, swtpm) and the real {@code ./tpmkms}:
 * <ul>
 *   <li>the README walkthrough, executed as written, against {@code ./run} and {@code ./run --tpm --tls};
 *   <li>however ./run is stopped — SIGTERM, Ctrl-C (SIGINT), a closed terminal (SIGHUP), one of its
 *       services killed — no process of it is left (by pid, by data directory, by port);
 *   <li>a ./run after a kill -9 of the previous one stops what that one left, then comes up.
 * </ul>
 * All starts share one data directory, as a user's do: the first start creates everything.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RunScriptIT {
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(90);

  @TempDir static Path dir;
  static Path data;
  static Path work;
  static Map<String, Integer> ports;
  static Map<String, String> cliEnv;
  static List<List<Step>> blocks;

  @BeforeAll
  static void setUp() throws Exception {
    data = dir.resolve("data");
    work = Files.createDirectories(dir.resolve("work"));
    Files.createSymbolicLink(work.resolve("tpmkms"), RunScript.ROOT.resolve("tpmkms"));
    ports = RunScript.choosePorts();
    cliEnv = new LinkedHashMap<>();
    cliEnv.put("TPMKMS_ADDRESS", "127.0.0.1:" + ports.get("TPMKMS_GRPC_PORT"));
    cliEnv.put("TPMKMS_AUDIT_ADDRESS", "127.0.0.1:" + ports.get("TPMKMS_AUDIT_GRPC_PORT"));
    cliEnv.put("TPMKMS_POLICY_ADDRESS", "127.0.0.1:" + ports.get("TPMKMS_POLICY_GRPC_PORT"));
    cliEnv.put("TPMKMS_OIDC_ISSUER", "http://127.0.0.1:" + ports.get("TPMKMS_KEYCLOAK_PORT") + "/realms/tpmkms");
    cliEnv.put("XDG_CONFIG_HOME", dir.resolve("xdg").toString());
    // ./tpmkms trusts the CA of a ./run --tls on the same data directory
    cliEnv.put("TPMKMS_DATA_DIR", data.toString());
    blocks = ReadmeWalkthrough.blocks(RunScript.ROOT.resolve("README.md"));
    assertEquals(4, blocks.size(), "README walkthrough blocks: software, TPM, audit, dev-user");
  }

  @Test
  @Order(1)
  void run_readmeWalkthrough_thenSigterm_stopsEverything() throws Exception {
    try (RunScript run = RunScript.start(data, ports).awaitReady()) {
      String out = run.output();
      // the terminal: a progress line per service, then the banner, and no service's own output
      assertTrue(out.indexOf("key service") < out.indexOf("tpmkms is running"), out);
      for (String line : List.of("./tpmkms login --username dev-admin", "dev-user  / dev-user",
          "127.0.0.1:" + ports.get("TPMKMS_GRPC_PORT"), "export TPMKMS_ADDRESS=127.0.0.1:" + ports.get("TPMKMS_GRPC_PORT"))) {
        assertTrue(out.contains(line), "banner lacks '" + line + "':\n" + out);
      }
      assertFalse(out.contains("initdb") || out.contains("INFO"), "service output on the terminal:\n" + out);
      assertTrue(out.lines().count() < 40, "terminal output of " + out.lines().count() + " lines:\n" + out);

      walk(run, blocks.get(0));
      walk(run, blocks.get(2));   // the audit trail of the above
      assertTrue(Files.exists(dir.resolve("xdg/tpmkms/credentials.json")), "token cache under XDG_CONFIG_HOME");

      run.signal("TERM");
      assertEquals(143, run.awaitExit(STOP_TIMEOUT), run.output());
      assertTrue(run.output().contains("stopped"), run.output());
      run.assertNothingLeft();
    }
  }

  @Test
  @Order(2)
  void runTpmTls_readmeTpmAndUserBlocks_overTls_thenCtrlC_stopsEverything() throws Exception {
    try (RunScript run = RunScript.start(data, ports, "--tpm", "--tls").awaitReady()) {
      assertTrue(run.output().contains("default protection: TPM"), run.output());
      assertTrue(run.output().contains("gRPC over TLS 1.3 (CA " + data.resolve("tls/ca.crt")), run.output());
      assertTrue(Files.readString(data.resolve("run/cli-ca-file")).contains("tls/ca.crt"));
      walk(run, blocks.get(1));   // logged in as dev-admin by the first block
      walk(run, blocks.get(3));
      // the services speak TLS only: the walk went over TLS, and they call each other with mutual TLS
      for (String service : List.of("key-service", "policy-service", "audit-service")) {
        assertTrue(Files.readString(data.resolve(service + ".log"))
            .contains("gRPC server: TLS (TLSv1.3, BoringSSL (netty-tcnative))"), service);
      }
      assertTrue(Files.readString(data.resolve("key-service.log")).contains("calling the policy service at 127.0.0.1:"
          + ports.get("TPMKMS_POLICY_GRPC_PORT") + " over TLS (CA " + data.resolve("tls/ca.crt") + ", client "
          + "certificate " + data.resolve("tls/key-service.crt")), "key service → policy service over mutual TLS");

      run.signal("INT");
      assertEquals(130, run.awaitExit(STOP_TIMEOUT), run.output());
      run.assertNothingLeft();
    }
  }

  @Test
  @Order(3)
  void run_terminalClosed_stopsEverything() throws Exception {
    try (RunScript run = RunScript.start(data, ports).awaitReady()) {
      run.signal("HUP");
      assertEquals(129, run.awaitExit(STOP_TIMEOUT), run.output());
      run.assertNothingLeft();
    }
  }

  @Test
  @Order(4)
  void run_keyServiceKilled_stopsTheRestAndSaysWhy() throws Exception {
    try (RunScript run = RunScript.start(data, ports).awaitReady()) {
      long key = run.servicePid("key-service");
      RunScript.signal("KILL", key);
      assertEquals(1, run.awaitExit(STOP_TIMEOUT), run.output());
      assertTrue(run.output().contains("the key service (pid " + key + ") exited"), run.output());
      run.assertNothingLeft();   // its PostgreSQL, orphaned by the SIGKILL, included
    }
  }

  @Test
  @Order(5)
  void run_afterKillMinus9OfRun_stopsWhatItLeftAndComesUp() throws Exception {
    RunScript first = RunScript.start(data, ports).awaitReady();
    long keyService = first.servicePid("key-service");
    first.signal("KILL");
    first.awaitExit(STOP_TIMEOUT);
    assertTrue(ProcessHandle.of(keyService).map(ProcessHandle::isAlive).orElse(false),
        "a SIGKILL of ./run leaves its services running");
    try (RunScript second = RunScript.start(data, ports).awaitReady()) {
      String out = second.output();
      assertTrue(out.contains("stopping what an earlier run left: key service (pid " + keyService + ")"), out);
      assertFalse(ProcessHandle.of(keyService).map(ProcessHandle::isAlive).orElse(false), out);
      ReadmeWalkthrough.run(List.of(new Step("./tpmkms keys get demo/files", "")), work, cliEnv);
      second.signal("TERM");
      assertEquals(143, second.awaitExit(STOP_TIMEOUT), second.output());
      second.assertNothingLeft();
    } finally {
      first.close();
    }
  }

  @Test
  @Order(6)
  void run_portHeldByAnotherProcess_saysWhoInOneLineAndStartsNothing() throws Exception {
    try (java.net.ServerSocket squatter = new java.net.ServerSocket(ports.get("TPMKMS_GRPC_PORT"), 1,
        java.net.InetAddress.getLoopbackAddress())) {
      RunScript run = RunScript.start(data, ports);
      try {
        assertEquals(1, run.awaitExit(STOP_TIMEOUT), run.output());
        String out = run.output();
        assertTrue(out.contains("port " + ports.get("TPMKMS_GRPC_PORT") + " (key service) is held by pid "
            + ProcessHandle.current().pid()), out);
        assertTrue(out.contains("TPMKMS_GRPC_PORT"), out);
        assertFalse(out.contains("Exception"), out);
        assertEquals(List.of(), run.processesOfDataDir(), "started something although a port was taken");
      } finally {
        run.close();
      }
    }
  }

  /**
   * Runs a README block against a running ./run; a failing step reports what ./run said and
   * the end of each service's log (the data directory is gone once the test ends).
   */
  private static void walk(RunScript run, List<ReadmeWalkthrough.Step> block) throws Exception {
    try {
      ReadmeWalkthrough.run(block, work, cliEnv);
    } catch (AssertionError e) {
      StringBuilder b = new StringBuilder(e.getMessage()).append("\n./run said:\n").append(run.output());
      try (var logs = Files.newDirectoryStream(data, "*.log")) {
        for (Path log : logs) {
          List<String> lines = Files.readAllLines(log);
          b.append("\n--- last lines of ").append(log.getFileName()).append(":\n")
              .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size())));
        }
      } catch (java.io.IOException | RuntimeException ignored) {
        // what could be read is in the message already
      }
      throw new AssertionError(b.toString(), e);
    }
  }
}

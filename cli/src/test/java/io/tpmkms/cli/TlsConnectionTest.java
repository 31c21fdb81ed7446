package io.tpmkms.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.tpmkms.tls.DevPki;
import io.tpmkms.tls.ReloadingKeyManager;
import io.tpmkms.tls.ReloadingTrustManager;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CLI over TLS against real TLS servers (gRPC Netty with the fake key service): a CA named
 * once is remembered for the address; every way a handshake can go wrong is told in one line
 * (exit 3), never a stack trace; bad TLS files and options are usage errors (exit 2).
 */
class TlsConnectionTest extends CliHarness {
  private Path dir;
  private Path ca;
  private Path otherCa;
  private Path clientCert;
  private Path clientKey;
  private Server tls;
  private Server mutual;
  private Server expired;

  private Server serve(ServerCredentials creds) throws Exception {
    return NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), creds).addService(service).build()
        .start();
  }

  @BeforeAll
  void startTlsServers() throws Exception {
    dir = Files.createTempDirectory("tpmkms-cli-tls");
    var authority = DevPki.newAuthority("cli test CA", Duration.ofDays(1));
    ca = dir.resolve("ca.crt");
    authority.writeCertificate(ca);
    DevPki.newAuthority("other CA", Duration.ofDays(1)).writeCertificate(otherCa = dir.resolve("other.crt"));
    authority.issue(List.of("localhost"), Duration.ofDays(1)).write(dir.resolve("s.crt"), dir.resolve("s.key"));
    Instant now = Instant.now();
    authority.issue(List.of("localhost"), now.minus(Duration.ofDays(2)), now.minus(Duration.ofDays(1)))
        .write(dir.resolve("old.crt"), dir.resolve("old.key"));
    authority.issue(List.of("cli"), Duration.ofDays(1)).write(clientCert = dir.resolve("c.crt"),
        clientKey = dir.resolve("c.key"));
    var serverKeys = new ReloadingKeyManager(dir.resolve("s.crt"), dir.resolve("s.key"));
    tls = serve(TlsServerCredentials.newBuilder().keyManager(serverKeys).build());
    mutual = serve(TlsServerCredentials.newBuilder().keyManager(serverKeys).trustManager(new ReloadingTrustManager(ca))
        .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE).build());
    expired = serve(TlsServerCredentials.newBuilder()
        .keyManager(new ReloadingKeyManager(dir.resolve("old.crt"), dir.resolve("old.key"))).build());
  }

  @AfterAll
  void stopTlsServers() throws Exception {
    for (Server s : new Server[] {tls, mutual, expired}) s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private Result list(String address, String... options) {
    var args = new java.util.ArrayList<>(List.of("keys", "list", "--namespace", "demo", "--address", address));
    args.addAll(List.of(options));
    return runAgainst(platform, new byte[0], args.toArray(String[]::new));
  }

  @Test
  void caFile_works_andIsRememberedForTheAddress() {
    String address = "localhost:" + tls.getPort();
    Result first = list(address, "--ca-file", ca.toString());
    assertEquals(0, first.exitCode(), first.toString());
    Result second = list(address);
    assertEquals(0, second.exitCode(), "the CA is remembered for " + address + ": " + second);
    Result forced = list(address, "--plaintext");
    assertEquals(3, forced.exitCode(), forced.toString());
    assertTrue(forced.stderr().contains("speaks TLS"), forced.stderr());
  }

  @Test
  void plaintextToTlsPort_saysTheServiceSpeaksTls() {
    Result r = list("localhost:" + tls.getPort());
    assertEquals(3, r.exitCode(), r.toString());
    assertTrue(r.stderr().contains("the key service at localhost:" + tls.getPort() + " speaks TLS: give its CA "
        + "bundle with --ca-file"), r.stderr());
    assertFalse(r.stderr().contains("\tat "), "no stack trace: " + r.stderr());
  }

  @Test
  void tlsToPlaintextPort_saysItDoesNotSpeakTls() {
    Result r = list(address, "--ca-file", ca.toString());
    assertEquals(3, r.exitCode(), r.toString());
    assertTrue(r.stderr().contains("does not speak TLS"), r.stderr());
  }

  @Test
  void certificateFromAnotherCa_expired_andWrongHost_areEachNamed() {
    Result wrongCa = list("localhost:" + tls.getPort(), "--ca-file", otherCa.toString());
    assertEquals(3, wrongCa.exitCode(), wrongCa.toString());
    assertTrue(wrongCa.stderr().contains("presented a certificate that the CA in " + otherCa + " did not sign"),
        wrongCa.stderr());

    Result old = list("localhost:" + expired.getPort(), "--ca-file", ca.toString());
    assertEquals(3, old.exitCode(), old.toString());
    assertTrue(old.stderr().contains("presented an expired certificate"), old.stderr());

    Result host = list("127.0.0.1:" + tls.getPort(), "--ca-file", ca.toString());
    assertEquals(3, host.exitCode(), host.toString());
    assertTrue(host.stderr().contains("a certificate for another host name"), host.stderr());
  }

  @Test
  void mutualTls_needsTheClientCertificate() {
    String address = "localhost:" + mutual.getPort();
    Result without = list(address, "--ca-file", ca.toString());
    assertEquals(3, without.exitCode(), without.toString());
    assertTrue(without.stderr().contains("requires a client certificate: give --client-cert and --client-key"),
        without.stderr());
    Result foreign = list(address, "--ca-file", ca.toString(), "--client-cert", dir.resolve("s.crt").toString(),
        "--client-key", dir.resolve("s.key").toString());
    assertEquals(0, foreign.exitCode(), "a certificate of the same CA (the server's own) is a valid client: " + foreign);
    Result with = list(address, "--ca-file", ca.toString(), "--client-cert", clientCert.toString(), "--client-key",
        clientKey.toString());
    assertEquals(0, with.exitCode(), with.toString());
  }

  @Test
  void badTlsFilesAndOptions_areUsageErrors() throws Exception {
    Path garbage = Files.writeString(dir.resolve("garbage.crt"), "not a certificate");
    Result bad = list("localhost:" + tls.getPort(), "--ca-file", garbage.toString());
    assertEquals(2, bad.exitCode(), bad.toString());
    assertTrue(bad.stderr().startsWith("error: TLS: " + garbage), bad.stderr());

    Result half = list("localhost:" + tls.getPort(), "--ca-file", ca.toString(), "--client-cert",
        clientCert.toString());
    assertEquals(2, half.exitCode(), half.toString());
    assertTrue(half.stderr().contains("--client-cert and --client-key go together"), half.stderr());
  }
}

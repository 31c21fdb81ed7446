package io.tpmkms.key.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.proto.key.v1.GenerateRandomRequest;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.tls.ClientTls;
import io.tpmkms.tls.ReloadingKeyManager;
import io.tpmkms.tls.ReloadingTrustManager;
import java.math.BigInteger;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

/**
 * The key service's gRPC port with TLS 1.3 and required client certificates, tried as clients
 * would: each handshake that must fail fails with UNAVAILABLE and a cause that says why, and no
 * request gets through; certificate and key files replaced under load are served within the
 * reload bound without failing a call.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@TestProfile(MutualTlsProfile.class)
class TransportSecurityTest {
  private static final GenerateRandomRequest RANDOM = GenerateRandomRequest.newBuilder().setLengthBytes(16).build();

  private static int port() {
    return ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
  }

  private static ManagedChannel channel(String host, ChannelCredentials creds) {
    return Grpc.newChannelBuilderForAddress(host, port(), creds).build();
  }

  private static ChannelCredentials good() {
    return ClientTls.verifiedBy(TlsFiles.CA).withClientCertificate(TlsFiles.CLIENT_CERT, TlsFiles.CLIENT_KEY)
        .credentials(null);
  }

  private static int call(ManagedChannel ch) {
    return KeyServiceGrpc.newBlockingStub(ch).withDeadlineAfter(20, TimeUnit.SECONDS).generateRandom(RANDOM)
        .getData().size();
  }

  /** The call fails UNAVAILABLE and some cause's message contains {@code why}. */
  private static void refused(ChannelCredentials creds, String host, String why) {
    ManagedChannel ch = channel(host, creds);
    try {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> call(ch));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
      StringBuilder chain = new StringBuilder(String.valueOf(e.getStatus().getDescription()));
      for (Throwable t = e; t != null; t = t.getCause()) chain.append(" | ").append(t);
      assertTrue(chain.toString().contains(why), "expected '" + why + "' in: " + chain);
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void rightCaAndClientCertificate_works() {
    ManagedChannel ch = channel("localhost", good());
    try {
      assertEquals(16, call(ch));
    } finally {
      ch.shutdownNow();
    }
  }

  /**
   * The health answer tells what the server runs on (ServerInfo): TLS on BoringSSL (netty-tcnative,
   * the default engine where it loads) and the software cryptography on Conscrypt.
   */
  @Test
  void healthAnswer_saysTlsAndCryptoRunOnBoringSsl() {
    ManagedChannel ch = channel("localhost", good());
    try {
      var headers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
      var trailers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
      var stub = grpc.health.v1.HealthGrpc.newBlockingStub(ch)
          .withInterceptors(io.grpc.stub.MetadataUtils.newCaptureMetadataInterceptor(headers, trailers))
          .withDeadlineAfter(20, TimeUnit.SECONDS);
      assertEquals(grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus.SERVING,
          stub.check(grpc.health.v1.HealthOuterClass.HealthCheckRequest.getDefaultInstance()).getStatus());
      String tls = headers.get().get(io.grpc.Metadata.Key.of("tpmkms-info-tls", io.grpc.Metadata.ASCII_STRING_MARSHALLER));
      String crypto = headers.get().get(
          io.grpc.Metadata.Key.of("tpmkms-info-crypto", io.grpc.Metadata.ASCII_STRING_MARSHALLER));
      String backends = headers.get().get(
          io.grpc.Metadata.Key.of("tpmkms-info-backends", io.grpc.Metadata.ASCII_STRING_MARSHALLER));
      assertEquals("BoringSSL (netty-tcnative)", tls);
      assertTrue(crypto != null && crypto.startsWith("ECDSA: Conscrypt 2.5.2 (BoringSSL); RSA: Conscrypt"), crypto);
      assertEquals("[SOFTWARE] (default SOFTWARE)", backends);
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void serverFromAnotherCa_isRefusedByTheClient() {
    refused(ClientTls.verifiedBy(TlsFiles.OTHER_CA).withClientCertificate(TlsFiles.CLIENT_CERT, TlsFiles.CLIENT_KEY)
        .credentials(null), "localhost", "PKIX path building failed");
  }

  @Test
  void wrongHostName_isRefusedByTheClient() {
    // the server's certificate names "localhost" only
    refused(good(), "127.0.0.1", "No subject alternative names matching IP address 127.0.0.1");
  }

  @Test
  void plaintextClient_toTlsPort_isRefused() {
    ManagedChannel ch = channel("localhost", InsecureChannelCredentials.create());
    try {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> call(ch));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void noClientCertificate_isRefusedByTheServer() {
    refused(ClientTls.verifiedBy(TlsFiles.CA).credentials(null), "localhost", "");
  }

  @Test
  void clientCertificateFromAnotherCa_isRefusedByTheServer() {
    refused(ClientTls.verifiedBy(TlsFiles.CA)
        .withClientCertificate(TlsFiles.OTHER_CLIENT_CERT, TlsFiles.OTHER_CLIENT_KEY).credentials(null),
        "localhost", "");
  }

  @Test
  void tls12Client_isRefused_whenOnlyTls13IsOffered() throws Exception {
    javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLSv1.2");
    ctx.init(new javax.net.ssl.KeyManager[] {new ReloadingKeyManager(TlsFiles.CLIENT_CERT, TlsFiles.CLIENT_KEY)},
        new javax.net.ssl.TrustManager[] {new ReloadingTrustManager(TlsFiles.CA)}, null);
    try (var s = (javax.net.ssl.SSLSocket) ctx.getSocketFactory().createSocket("localhost", port())) {
      s.setEnabledProtocols(new String[] {"TLSv1.2"});
      var e = assertThrows(javax.net.ssl.SSLException.class, s::startHandshake);
      assertTrue(e.getMessage().contains("protocol_version") || e.getMessage().contains("handshake_failure")
          || e.getMessage().contains("protocol"), e.getMessage());
    }
  }

  /**
   * Replaces the served certificate (an expired one first, then a good one) while 8 channels
   * call without pause and a new channel connects every 50 ms: each new certificate is seen by
   * new handshakes within the reload bound (200 ms + a handshake), the expired one is refused by
   * clients, and none of the calls on established channels fails.
   */
  @Test
  void certificateRotation_underLoad_failsNoCall() throws Exception {
    Path backupCert = Files.copy(TlsFiles.SERVER_CERT, TlsFiles.DIR.resolve("server.crt.orig"),
        StandardCopyOption.REPLACE_EXISTING);
    Path backupKey = Files.copy(TlsFiles.SERVER_KEY, TlsFiles.DIR.resolve("server.key.orig"),
        StandardCopyOption.REPLACE_EXISTING);
    AtomicBoolean running = new AtomicBoolean(true);
    AtomicInteger calls = new AtomicInteger();
    List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
    List<ManagedChannel> steady = new ArrayList<>();
    List<Thread> workers = new ArrayList<>();
    try {
      for (int i = 0; i < 8; i++) {
        ManagedChannel ch = channel("localhost", good());
        steady.add(ch);
        call(ch);
        Thread t = new Thread(() -> {
          while (running.get()) {
            try {
              call(ch);
              calls.incrementAndGet();
            } catch (RuntimeException e) {
              failures.add(e);
            }
          }
        });
        t.start();
        workers.add(t);
      }
      BigInteger first = servedSerial();

      // an expired certificate: clients refuse new handshakes, established channels go on
      Instant now = Instant.now();
      TlsFiles.server(now.minus(Duration.ofDays(2)), now.minus(Duration.ofDays(1)))
          .write(TlsFiles.SERVER_CERT, TlsFiles.SERVER_KEY);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      boolean refusedExpired = false;
      while (!refusedExpired && System.nanoTime() < deadline) {
        try {
          servedSerial();
          Thread.sleep(50);
        } catch (StatusRuntimeException e) {
          refusedExpired = chainOf(e).contains("validity check failed") || chainOf(e).contains("expired");
        }
      }
      assertTrue(refusedExpired, "new handshakes should be refused while the served certificate is expired");

      // a good new certificate: served within the reload bound
      TlsFiles.server(now.minusSeconds(60), now.plus(Duration.ofDays(1))).write(TlsFiles.SERVER_CERT,
          TlsFiles.SERVER_KEY);
      long replacedAt = System.nanoTime();
      BigInteger next = null;
      while (System.nanoTime() - replacedAt < TimeUnit.SECONDS.toNanos(10)) {
        try {
          BigInteger s = servedSerial();
          if (!s.equals(first)) {
            next = s;
            break;
          }
        } catch (StatusRuntimeException e) {
          // still the expired one
        }
        Thread.sleep(50);
      }
      long seenAfterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - replacedAt);
      assertTrue(next != null, "the new certificate was not served within 10 s");
      assertNotEquals(first, next);
      // 200 ms reload interval + handshakes; generous, as eight callers keep both cores busy meanwhile
      assertTrue(seenAfterMs < 5_000, "the new certificate was served after " + seenAfterMs + " ms (bound: 200 ms "
          + "reload interval + handshakes)");
      // keep the load on until it has made thousands of calls across the rotations
      long loadDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(40);
      while (calls.get() < 2_000 && System.nanoTime() < loadDeadline) Thread.sleep(100);
      running.set(false);
      for (Thread t : workers) t.join(30_000);
      assertTrue(calls.get() >= 500, "too few calls under load: " + calls.get());
      assertTrue(failures.isEmpty(), failures.size() + " of " + calls.get() + " calls failed during rotation: "
          + (failures.isEmpty() ? "" : failures.get(0)));
      org.jboss.logging.Logger.getLogger(TransportSecurityTest.class).infof("rotation under load: %d calls, 0 failed; new certificate served %d ms after the files "
          + "changed", calls.get(), seenAfterMs);
    } finally {
      running.set(false);
      for (ManagedChannel ch : steady) ch.shutdownNow();
      Files.move(backupCert, TlsFiles.SERVER_CERT, StandardCopyOption.REPLACE_EXISTING);
      Files.move(backupKey, TlsFiles.SERVER_KEY, StandardCopyOption.REPLACE_EXISTING);
      Thread.sleep(600);
    }
  }

  private static String chainOf(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) b.append(t).append(" | ");
    return b.toString();
  }

  /** The serial of the certificate a new connection is served (a new channel each time). */
  private static BigInteger servedSerial() {
    ReloadingTrustManager trust = new ReloadingTrustManager(TlsFiles.CA);
    AtomicReference<BigInteger> serial = new AtomicReference<>();
    X509ExtendedTrustManager recording = new X509ExtendedTrustManager() {
      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
          throws CertificateException {
        serial.set(chain[0].getSerialNumber());
        trust.checkServerTrusted(chain, authType, engine);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
          throws CertificateException {
        serial.set(chain[0].getSerialNumber());
        trust.checkServerTrusted(chain, authType, socket);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        serial.set(chain[0].getSerialNumber());
        trust.checkServerTrusted(chain, authType);
      }

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String a, SSLEngine e) throws CertificateException {
        throw new CertificateException("client side only");
      }

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String a, Socket s) throws CertificateException {
        throw new CertificateException("client side only");
      }

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String a) throws CertificateException {
        throw new CertificateException("client side only");
      }

      @Override
      public X509Certificate[] getAcceptedIssuers() {
        return trust.getAcceptedIssuers();
      }
    };
    ChannelCredentials creds = TlsChannelCredentials.newBuilder().trustManager(recording)
        .keyManager(new ReloadingKeyManager(TlsFiles.CLIENT_CERT, TlsFiles.CLIENT_KEY)).build();
    ManagedChannel ch = channel("localhost", creds);
    try {
      call(ch);
      return serial.get();
    } finally {
      ch.shutdownNow();
    }
  }
}

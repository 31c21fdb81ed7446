package io.tpmkms.kmsplugin;

import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.tpmkms.client.RetryPolicy;
import io.tpmkms.client.TokenSource;
import io.tpmkms.tls.CertificateReloader;
import io.tpmkms.tls.ClientTls;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code java -jar tpmkms-kms-plugin.jar}: the Kubernetes KMS v2 plugin as a process beside
 * kube-apiserver. Every flag has an environment variable (docs/clients.md lists both); the client
 * secret is read from a file, never taken on the command line. Runs until SIGTERM or SIGINT, then
 * stops gracefully and removes its socket. Exit status 2 for a bad setting, 1 when it cannot start.
 */
@Command(name = "tpmkms-kms-plugin", mixinStandardHelpOptions = true, sortOptions = false,
    description = "Kubernetes KMS v2 plugin: KeyManagementService (Status, Encrypt, Decrypt) on a UNIX socket, "
        + "backed by a tpmkms key.")
public final class KmsPlugin implements Callable<Integer> {
  private static final System.Logger LOG = System.getLogger(KmsPlugin.class.getName());

  @Option(names = "--socket", paramLabel = "PATH", defaultValue = "${env:TPMKMS_KMS_PLUGIN_SOCKET:-/var/run/tpmkms/kms.sock}",
      description = "The UNIX socket kube-apiserver calls (mode 0600). Env TPMKMS_KMS_PLUGIN_SOCKET. Default: ${DEFAULT-VALUE}.")
  Path socket;

  @Option(names = "--target", paramLabel = "HOST:PORT", defaultValue = "${env:TPMKMS_ADDRESS}",
      description = "The tpmkms key service. Env TPMKMS_ADDRESS.")
  String target;

  @Option(names = "--key", paramLabel = "NAMESPACE/NAME", defaultValue = "${env:TPMKMS_KEY}",
      description = "The tpmkms key (purpose ENCRYPT_DECRYPT) that wraps the API server's data keys. Env TPMKMS_KEY.")
  String key;

  @Option(names = "--tls-ca-file", paramLabel = "FILE", defaultValue = "${env:TPMKMS_TLS_CA_FILE}",
      description = "CA bundle the key service's certificate is verified against (default: the JVM's trust store). "
          + "Env TPMKMS_TLS_CA_FILE.")
  Path caFile;

  @Option(names = "--tls-cert-file", paramLabel = "FILE", defaultValue = "${env:TPMKMS_TLS_CERT_FILE}",
      description = "Client certificate (PEM) for mutual TLS. Env TPMKMS_TLS_CERT_FILE.")
  Path certFile;

  @Option(names = "--tls-key-file", paramLabel = "FILE", defaultValue = "${env:TPMKMS_TLS_KEY_FILE}",
      description = "Its private key (PEM). Env TPMKMS_TLS_KEY_FILE.")
  Path keyFile;

  @Option(names = "--plaintext", defaultValue = "${env:TPMKMS_PLAINTEXT:-false}",
      description = "No TLS to the key service (a key service on loopback only). Env TPMKMS_PLAINTEXT=true.")
  boolean plaintext;

  @Option(names = "--oidc-issuer", paramLabel = "URL", defaultValue = "${env:TPMKMS_OIDC_ISSUER}",
      description = "OpenID issuer for client-credentials tokens, e.g. https://sso.example/realms/tpmkms "
          + "(none: no tokens). Env TPMKMS_OIDC_ISSUER.")
  URI issuer;

  @Option(names = "--oidc-client-id", paramLabel = "ID", defaultValue = "${env:TPMKMS_OIDC_CLIENT_ID}",
      description = "The plugin's OIDC client (a service account with tpmkms-user on the key). Env TPMKMS_OIDC_CLIENT_ID.")
  String clientId;

  @Option(names = "--oidc-client-secret-file", paramLabel = "FILE",
      defaultValue = "${env:TPMKMS_OIDC_CLIENT_SECRET_FILE}",
      description = "File holding the client's secret (never the secret itself). Env TPMKMS_OIDC_CLIENT_SECRET_FILE.")
  Path clientSecretFile;

  @Option(names = "--deadline", paramLabel = "DURATION", defaultValue = "${env:TPMKMS_DEADLINE:-10s}",
      description = "Each tpmkms attempt's deadline (the API server's own deadline applies too). Env TPMKMS_DEADLINE. "
          + "Default: ${DEFAULT-VALUE}.")
  String deadline;

  @Option(names = "--max-attempts", paramLabel = "N", defaultValue = "${env:TPMKMS_MAX_ATTEMPTS:-5}",
      description = "Attempts of an Encrypt or Decrypt after UNAVAILABLE or ABORTED, the first included. "
          + "Env TPMKMS_MAX_ATTEMPTS. Default: ${DEFAULT-VALUE}.")
  int maxAttempts;

  @Option(names = "--status-timeout", paramLabel = "DURATION", defaultValue = "${env:TPMKMS_STATUS_TIMEOUT:-5s}",
      description = "Status's encrypt-and-decrypt probe in all. Env TPMKMS_STATUS_TIMEOUT. Default: ${DEFAULT-VALUE}.")
  String statusTimeout;

  @Option(names = "--aad", paramLabel = "TEXT", defaultValue = "${env:TPMKMS_AAD}",
      description = "Additional authenticated data bound to every data key (e.g. the cluster's name); "
          + "changing it later makes stored data keys undecryptable. Env TPMKMS_AAD.")
  String aad;

  /**
   * grpc-java's server asks for SO_KEEPALIVE on every accepted connection, which a UNIX socket does
   * not have: netty warns of it once per connection. Held here so the setting is not collected.
   */
  private static final java.util.logging.Logger NETTY_OPTIONS =
      java.util.logging.Logger.getLogger("io.grpc.netty.shaded.io.netty.bootstrap.AbstractBootstrap");

  public static void main(String[] args) {
    if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
      System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT.%1$tL %4$s %3$s: %5$s%6$s%n");
    }
    NETTY_OPTIONS.setLevel(java.util.logging.Level.SEVERE);
    System.exit(run(args));
  }

  /**
   * The settings these flags (and the environment) make, checked, for running the plugin in-process
   * ({@link Settings#start()}): what a test or a benchmark does with the command line of a deployment.
   *
   * @throws IllegalArgumentException for a bad or missing setting
   * @throws IOException when the client secret file cannot be read
   */
  public static Settings settings(String... args) throws IOException {
    KmsPlugin p = new KmsPlugin();
    try {
      new CommandLine(p).parseArgs(args);
    } catch (CommandLine.ParameterException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
    return p.settings();
  }

  /** Runs the plugin until SIGTERM; the exit status. */
  static int run(String... args) {
    return new CommandLine(new KmsPlugin()).execute(args);
  }

  @Override
  public Integer call() throws Exception {
    Settings s;
    try {
      s = settings();
    } catch (IllegalArgumentException | IOException e) {
      System.err.println("tpmkms-kms-plugin: " + e.getMessage());
      return 2;
    }
    try (Running running = s.start()) {
      Thread hook = new Thread(running::close, "kms-plugin-shutdown");
      Runtime.getRuntime().addShutdownHook(hook);
      running.server().awaitTermination();
    }
    return 0;
  }

  /**
   * The checked settings of a plugin.
   *
   * @param socket        the UNIX socket
   * @param target        the key service, host:port
   * @param key           NAMESPACE/NAME
   * @param tls           how the key service is reached
   * @param tokens        the plugin's bearer tokens
   * @param tokensFrom    for the log: "no tokens" or "client X at ISSUER"
   * @param deadline      each attempt's
   * @param retries       Encrypt's and Decrypt's
   * @param statusTimeout Status's probe's
   * @param aad           bound to every data key
   */
  public record Settings(Path socket, String target, String key, ClientTls tls, TokenSource tokens, String tokensFrom,
      Duration deadline, RetryPolicy retries, Duration statusTimeout, byte[] aad) {

    /**
     * Connects to tpmkms and starts the plugin on the socket. The channel, its TLS reloader and both
     * clients are closed with the returned handle.
     */
    public Running start() {
      CertificateReloader reloader = tls.tls() ? new CertificateReloader(Duration.ofMinutes(1)) : null;
      ManagedChannel channel = Grpc.newChannelBuilder(target, tls.credentials(reloader))
          .userAgent("tpmkms-kms-plugin").build();
      TpmkmsConnection tpmkms = TpmkmsConnection.over(channel, tokens, deadline, retries, statusTimeout);
      LOG.log(Level.INFO, "tpmkms at {0} over {1}, {2}; key {3}; deadline {4}, {5} attempts, status timeout {6}{7}",
          target, tls.describe(), tokensFrom, key, deadline, retries.maxAttempts(), statusTimeout,
          aad.length == 0 ? "" : "; with additional authenticated data");
      try {
        KmsPluginServer server = KmsPluginServer.start(socket, key, aad, statusTimeout, tpmkms);
        return new Running(server, channel, reloader);
      } catch (RuntimeException e) {
        channel.shutdownNow();
        if (reloader != null) reloader.close();
        throw e;
      }
    }
  }

  /** A started plugin and what it holds; {@link #close()} stops it (idempotent). */
  public record Running(KmsPluginServer server, ManagedChannel channel, CertificateReloader reloader)
      implements AutoCloseable {
    @Override
    public void close() {
      server.close();
      channel.shutdown();
      try {
        if (!channel.awaitTermination(2, TimeUnit.SECONDS)) channel.shutdownNow();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        channel.shutdownNow();
      }
      if (reloader != null) reloader.close();
    }
  }

  /** The flags and environment, checked. */
  Settings settings() throws IOException {
    if (target == null || target.isBlank()) throw new IllegalArgumentException("--target (or TPMKMS_ADDRESS) is required");
    if (key == null) throw new IllegalArgumentException("--key (or TPMKMS_KEY) is required");
    KeyId.requireKeyName(key);
    ClientTls tls;
    if (plaintext) {
      if (caFile != null || certFile != null || keyFile != null) {
        throw new IllegalArgumentException("--plaintext takes no --tls-* files");
      }
      tls = ClientTls.plaintext();
    } else {
      tls = new ClientTls(true, Optional.ofNullable(caFile), Optional.ofNullable(certFile),
          Optional.ofNullable(keyFile));
    }
    TokenSource tokens;
    String tokensFrom;
    if (issuer == null) {
      if (clientId != null || clientSecretFile != null) {
        throw new IllegalArgumentException("--oidc-client-id and --oidc-client-secret-file need --oidc-issuer");
      }
      tokens = TokenSource.none();
      tokensFrom = "no tokens";
    } else {
      if (clientId == null || clientSecretFile == null) {
        throw new IllegalArgumentException("--oidc-issuer needs --oidc-client-id and --oidc-client-secret-file");
      }
      String secret = Files.readString(clientSecretFile, StandardCharsets.UTF_8).strip();
      if (secret.isEmpty()) throw new IllegalArgumentException("the client secret file " + clientSecretFile + " is empty");
      tokens = TokenSource.clientCredentials(issuer, clientId, secret);
      tokensFrom = "client " + clientId + " at " + issuer;
    }
    RetryPolicy retries = new RetryPolicy(maxAttempts, RetryPolicy.DEFAULT.initialBackoff(),
        RetryPolicy.DEFAULT.maxBackoff(), RetryPolicy.DEFAULT.multiplier());
    return new Settings(socket, target, key, tls, tokens, tokensFrom, duration("--deadline", deadline), retries,
        duration("--status-timeout", statusTimeout), aad == null ? new byte[0] : aad.getBytes(StandardCharsets.UTF_8));
  }

  private static final Pattern SHORT = Pattern.compile("([0-9]+)(ms|s|m)");

  /** "500ms", "10s", "2m" or ISO-8601 ("PT10S"); positive. */
  static Duration duration(String flag, String text) {
    Duration d;
    Matcher m = SHORT.matcher(text.strip());
    if (m.matches()) {
      long n = Long.parseLong(m.group(1));
      d = switch (m.group(2)) {
        case "ms" -> Duration.ofMillis(n);
        case "s" -> Duration.ofSeconds(n);
        default -> Duration.ofMinutes(n);
      };
    } else {
      try {
        d = Duration.parse(text.strip());
      } catch (DateTimeParseException e) {
        throw new IllegalArgumentException(flag + ": not a duration (500ms, 10s, 2m, PT10S): " + text);
      }
    }
    if (d.isNegative() || d.isZero()) throw new IllegalArgumentException(flag + " must be positive: " + text);
    return d;
  }
}

package io.tpmkms.kmsplugin;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.tpmkms.client.TpmkmsClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The KMS v2 plugin's gRPC server on a UNIX domain socket (netty's native epoll transport, Linux).
 * What {@link KmsPlugin} runs, and what a test or a benchmark starts in-process:
 *
 * <pre>{@code
 * try (KmsPluginServer plugin = KmsPluginServer.start(Path.of("/tmp/kms.sock"), "k8s/etcd", kms)) {
 *   // kube-apiserver (or a KeyManagementService stub) on unix:///tmp/kms.sock
 * }
 * }</pre>
 *
 * <p>The socket file has mode 0600 from the moment it can be connected to: it is bound in a private
 * directory (0700) beside its path, restricted, then renamed into place. At start a stale socket
 * file left by a killed plugin is removed; a socket that still accepts connections (another plugin
 * running) or a path that is not a socket is left alone and start fails. {@link #close()} stops
 * taking calls, lets running ones finish for up to 5 s, and removes the socket file.
 *
 * <p>Failure modes of {@link #start}: {@link IllegalStateException} when epoll is unavailable (not
 * Linux, or netty's native library cannot load) or the path is taken; {@link UncheckedIOException}
 * when the socket cannot be created.
 */
public final class KmsPluginServer implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(KmsPluginServer.class.getName());
  /** sun_path of struct sockaddr_un, without its terminating NUL. */
  private static final int MAX_SOCKET_PATH = 107;
  private static final Duration GRACE = Duration.ofSeconds(5);

  private final Path socket;
  private final Server server;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final ScheduledExecutorService timer;

  private KmsPluginServer(Path socket, Server server, EventLoopGroup boss, EventLoopGroup workers,
      ScheduledExecutorService timer) {
    this.socket = socket;
    this.server = server;
    this.boss = boss;
    this.workers = workers;
    this.timer = timer;
  }

  /** A plugin for {@code key} without additional authenticated data, probing through {@code kms} in 5 s. */
  public static KmsPluginServer start(Path socket, String key, TpmkmsClient kms) {
    return start(socket, key, new byte[0], Duration.ofSeconds(5), TpmkmsConnection.of(kms));
  }

  /**
   * Starts the plugin on {@code socket}; the arguments after it are {@link
   * TpmkmsKeyManagementService}'s.
   */
  public static KmsPluginServer start(Path socket, String key, byte[] aad, Duration statusTimeout,
      TpmkmsConnection tpmkms) {
    if (!Epoll.isAvailable()) {
      throw new IllegalStateException("the KMS plugin's UNIX socket needs netty's native epoll transport "
          + "(Linux on x86_64 or aarch64), which is unavailable here: " + Epoll.unavailabilityCause());
    }
    Path path = socket.toAbsolutePath().normalize();
    if (path.toString().getBytes(StandardCharsets.UTF_8).length > MAX_SOCKET_PATH) {
      throw new IllegalArgumentException("a UNIX socket path has at most " + MAX_SOCKET_PATH + " bytes: " + path);
    }
    ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "kms-plugin-timer");
      t.setDaemon(true);
      return t;
    });
    EventLoopGroup boss = new EpollEventLoopGroup(1);
    EventLoopGroup workers = new EpollEventLoopGroup(Math.max(2, Runtime.getRuntime().availableProcessors()));
    Server server = null;
    Path staging = null;
    try {
      Files.createDirectories(path.getParent());
      removeStale(path);
      staging = Files.createTempDirectory(path.getParent(), ".kms",
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      Path bound = staging.resolve("s");
      boolean staged = bound.toString().getBytes(StandardCharsets.UTF_8).length <= MAX_SOCKET_PATH;
      if (!staged) bound = path; // a long path: bound in place, restricted a moment later
      server = NettyServerBuilder.forAddress(new DomainSocketAddress(bound.toString()))
          .channelType(EpollServerDomainSocketChannel.class).bossEventLoopGroup(boss).workerEventLoopGroup(workers)
          .maxInboundMessageSize(64 * 1024)
          .addService(new TpmkmsKeyManagementService(tpmkms, key, aad, statusTimeout, timer))
          .build().start();
      Files.setPosixFilePermissions(bound, PosixFilePermissions.fromString("rw-------"));
      if (staged) Files.move(bound, path, StandardCopyOption.ATOMIC_MOVE);
      LOG.log(Level.INFO, "KMS v2 plugin for key {0} listening on unix://{1}", key, path);
      return new KmsPluginServer(path, server, boss, workers, timer);
    } catch (IOException | RuntimeException e) {
      if (server != null) server.shutdownNow();
      boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      timer.shutdownNow();
      if (e instanceof IOException io) throw new UncheckedIOException("cannot serve on " + path + ": " + e, io);
      throw (RuntimeException) e;
    } finally {
      if (staging != null) deleteQuietly(staging);
    }
  }

  /** Removes a socket file nothing listens on; refuses to touch anything else. */
  private static void removeStale(Path path) throws IOException {
    if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) return;
    BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (!a.isOther()) {
      throw new IllegalStateException(path + " exists and is not a socket: not removing it");
    }
    try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      probe.connect(UnixDomainSocketAddress.of(path));
      throw new IllegalStateException("another process serves " + path + " (is a plugin already running?)");
    } catch (IOException refused) {
      Files.delete(path);
      LOG.log(Level.INFO, "removed the stale socket {0}", path);
    }
  }

  private static void deleteQuietly(Path dir) {
    try (var files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) Files.deleteIfExists(f);
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      LOG.log(Level.WARNING, "could not remove {0}: {1}", dir, e.toString());
    }
  }

  /** The socket's path. */
  public Path socket() {
    return socket;
  }

  /** The gRPC target of the socket, as kube-apiserver's EncryptionConfiguration names it: {@code unix:///...}. */
  public String target() {
    return "unix://" + socket;
  }

  /** Blocks until the server has stopped (by {@link #close()}, e.g. from a SIGTERM hook). */
  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  /** Stops taking calls, lets running ones finish (up to 5 s), removes the socket file. Idempotent. */
  @Override
  public void close() {
    server.shutdown();
    try {
      if (!server.awaitTermination(GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
        server.shutdownNow().awaitTermination(1, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      server.shutdownNow();
    }
    try {
      if (Files.deleteIfExists(socket)) LOG.log(Level.INFO, "KMS v2 plugin stopped; removed {0}", socket);
    } catch (IOException e) {
      LOG.log(Level.WARNING, "could not remove {0}: {1}", socket, e.toString());
    }
    boss.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2, TimeUnit.SECONDS);
    timer.shutdownNow();
  }
}

package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.tpm.TpmConfig;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import tss.TpmDevice;

/**
 * A TSS.Java device speaking the raw TPM 2.0 command protocol: a command is
 * written whole, the response is read whole (its 4-byte size is at offset 2 of
 * the 10-byte header). Over a UNIX domain socket or TCP (TCP_NODELAY: TSS.Java's
 * own TCP device waits for Nagle, 44 ms per command) to swtpm's data port, or
 * over a character device such as {@code /dev/tpmrm0}, where one write is one
 * command and one read returns one whole response.
 *
 * <p>Not thread-safe: used only under TpmConnection's lock. Every I/O
 * failure and every timeout is thrown as {@link TpmIoException}; the connection
 * then closes this device and opens a new one for the next command.
 */
public final class RawTpmDevice extends TpmDevice {
  static final int HEADER = 10;
  static final int MAX_RESPONSE = 64 * 1024;

  private static final ScheduledExecutorService WATCHDOG = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "tpm-device-watchdog");
    t.setDaemon(true);
    return t;
  });

  private final TpmConfig config;
  private final long timeoutMillis;
  private SocketChannel socket;
  private Selector selector;
  private FileChannel file;
  private byte[] response;
  private byte[] lastResponse;

  public RawTpmDevice(TpmConfig config) {
    this.config = config;
    this.timeoutMillis = config.commandTimeout().toMillis();
  }

  /** Opens the transport; throws {@link TpmIoException} if it cannot. */
  public void open() {
    try {
      switch (config.transport()) {
        case UNIX -> openSocket(SocketChannel.open(StandardProtocolFamily.UNIX),
            UnixDomainSocketAddress.of(Path.of(config.path())));
        case TCP -> {
          SocketChannel ch = SocketChannel.open(StandardProtocolFamily.INET);
          ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
          openSocket(ch, new InetSocketAddress(config.host(), config.port()));
        }
        case DEVICE -> file = FileChannel.open(Path.of(config.path()), StandardOpenOption.READ,
            StandardOpenOption.WRITE);
      }
    } catch (IOException | RuntimeException e) {
      close();
      throw new TpmIoException("cannot connect to the TPM at " + where() + ": " + e.getMessage(), e);
    }
  }

  private void openSocket(SocketChannel ch, java.net.SocketAddress address) throws IOException {
    socket = ch;
    ch.configureBlocking(false);
    selector = Selector.open();
    if (!ch.connect(address)) {
      ch.register(selector, SelectionKey.OP_CONNECT);
      if (selector.select(timeoutMillis) == 0) throw new IOException("connect timed out");
      ch.finishConnect();
      selector.selectedKeys().clear();
      ch.keyFor(selector).interestOps(0);
    } else {
      ch.register(selector, 0);
    }
  }

  public boolean isOpen() { return socket != null || file != null; }

  String where() {
    return config.transport() == TpmConfig.Transport.TCP ? config.host() + ":" + config.port() : config.path();
  }

  @Override
  public boolean connect() {
    open();
    return true;
  }

  @Override
  public void dispatchCommand(byte[] command) {
    if (!isOpen()) throw new TpmIoException("TPM connection is closed");
    response = null;
    try {
      if (file != null) {
        response = transactDevice(command);
      } else {
        writeSocket(ByteBuffer.wrap(command));
        ByteBuffer header = ByteBuffer.allocate(HEADER);
        readSocket(header);
        int size = header.getInt(2);
        if (size < HEADER || size > MAX_RESPONSE) throw new IOException("bad response size " + size);
        ByteBuffer all = ByteBuffer.allocate(size);
        all.put(header.array());
        readSocket(all);
        response = all.array();
      }
      lastResponse = response;
    } catch (IOException e) {
      throw new TpmIoException("TPM I/O failed (" + where() + "): " + e.getMessage(), e);
    }
  }

  private void writeSocket(ByteBuffer buf) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    SelectionKey key = socket.keyFor(selector);
    while (buf.hasRemaining()) {
      if (socket.write(buf) > 0) continue;
      key.interestOps(SelectionKey.OP_WRITE);
      waitReady(deadline, "write");
    }
    key.interestOps(0);
  }

  private void readSocket(ByteBuffer buf) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    SelectionKey key = socket.keyFor(selector);
    while (buf.hasRemaining()) {
      int n = socket.read(buf);
      if (n < 0) throw new EOFException("TPM closed the connection");
      if (n > 0) continue;
      key.interestOps(SelectionKey.OP_READ);
      waitReady(deadline, "response");
    }
    key.interestOps(0);
  }

  private void waitReady(long deadline, String what) throws IOException {
    long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    if (left <= 0) throw new IOException("timed out waiting for the TPM " + what);
    selector.select(left);
    selector.selectedKeys().clear();
    if (Thread.currentThread().isInterrupted()) throw new InterruptedIOException("interrupted");
  }

  /**
   * Character device: the driver takes one whole command per write and returns
   * one whole response per read. A FileChannel read cannot time out, so a
   * watchdog closes the channel at the deadline, which fails the read with
   * AsynchronousCloseException. (Not testable without a kernel TPM.)
   */
  private byte[] transactDevice(byte[] command) throws IOException {
    FileChannel ch = file;
    ScheduledFuture<?> watchdog = WATCHDOG.schedule(() -> {
      try {
        ch.close();
      } catch (IOException ignored) {
        // the blocked read fails either way
      }
    }, timeoutMillis, TimeUnit.MILLISECONDS);
    try {
      ByteBuffer out = ByteBuffer.wrap(command);
      int written = ch.write(out);
      if (written != command.length) throw new IOException("short write to the TPM device: " + written);
      ByteBuffer in = ByteBuffer.allocate(MAX_RESPONSE);
      int n = ch.read(in);
      if (n < HEADER) throw new IOException("short response from the TPM device: " + n);
      int size = in.getInt(2);
      if (size != n) throw new IOException("response size " + size + " but read " + n + " bytes");
      byte[] r = new byte[n];
      in.flip();
      in.get(r);
      return r;
    } finally {
      watchdog.cancel(false);
    }
  }

  @Override
  public byte[] getResponse() {
    if (response == null) throw new TpmIoException("no TPM response");
    byte[] r = response;
    response = null;
    return r;
  }

  @Override
  public boolean responseReady() { return response != null; }

  /** The raw response code of the last response, or -1 if there was none. */
  public int lastResponseCode() {
    byte[] r = lastResponse;
    if (r == null || r.length < HEADER) return -1;
    return ByteBuffer.wrap(r, 6, 4).getInt();
  }

  /** The last whole response (header included), for callers that need exact response bytes. */
  public byte[] lastResponse() { return lastResponse; }

  public void clearLastResponse() { lastResponse = null; }

  @Override
  public void close() {
    try {
      if (selector != null) selector.close();
    } catch (IOException ignored) {
      // closing
    }
    try {
      if (socket != null) socket.close();
    } catch (IOException ignored) {
      // closing
    }
    try {
      if (file != null) file.close();
    } catch (IOException ignored) {
      // closing
    }
    selector = null;
    socket = null;
    file = null;
    response = null;
  }
}

package io.tpmkms.protection.tpm;

import java.time.Duration;
import java.util.Objects;

/**
 * How to reach the TPM and how to use its object memory.
 *
 * @param transport how commands travel
 * @param path UNIX socket path (swtpm's data socket) or character device ({@code /dev/tpmrm0})
 * @param host TCP host (swtpm's data port), for {@link Transport#TCP}
 * @param port TCP port, for {@link Transport#TCP}
 * @param commandTimeout longest wait for one response; RSA key generation on a real chip takes seconds
 * @param maxLoadedObjects how many key objects to keep loaded besides the SRK (swtpm holds 3 transient
 *     objects; the SRK takes one, and one must stay free for sequences and sealed objects, so 2 is
 *     the most for swtpm, and commands that need a free slot evict first)
 * @param persistentSrkHandle null to re-derive the SRK with CreatePrimary at every connect (the
 *     default); else a persistent handle such as {@code 0x81000001} holding the same SRK, created and
 *     persisted (EvictControl under the owner hierarchy) if absent
 */
public record TpmConfig(
    Transport transport, String path, String host, int port, Duration commandTimeout,
    int maxLoadedObjects, Integer persistentSrkHandle) {

  /** The transports a {@link TpmConnection} speaks; all carry the raw TPM 2.0 command protocol. */
  public enum Transport {
    /** swtpm's data socket as a UNIX domain socket. */
    UNIX,
    /** swtpm's data port over TCP, with TCP_NODELAY. */
    TCP,
    /** A kernel character device, normally the resource manager {@code /dev/tpmrm0}. */
    DEVICE
  }

  public static final Duration DEFAULT_COMMAND_TIMEOUT = Duration.ofSeconds(60);
  public static final int DEFAULT_MAX_LOADED_OBJECTS = 2;
  public static final int DEFAULT_PERSISTENT_SRK = 0x81000001;

  public TpmConfig {
    Objects.requireNonNull(transport, "transport");
    if (commandTimeout == null) commandTimeout = DEFAULT_COMMAND_TIMEOUT;
    if (commandTimeout.isNegative() || commandTimeout.isZero()) {
      throw new IllegalArgumentException("command timeout must be > 0");
    }
    if (maxLoadedObjects < 1) throw new IllegalArgumentException("maxLoadedObjects must be >= 1");
    switch (transport) {
      case UNIX, DEVICE -> {
        if (path == null || path.isBlank()) throw new IllegalArgumentException(transport + " needs a path");
      }
      case TCP -> {
        if (host == null || host.isBlank()) throw new IllegalArgumentException("TCP needs a host");
        if (port < 1 || port > 65535) throw new IllegalArgumentException("TCP port out of range: " + port);
      }
    }
    if (persistentSrkHandle != null && (persistentSrkHandle >>> 24) != 0x81) {
      throw new IllegalArgumentException("persistent SRK handle must be 0x81xxxxxx");
    }
  }

  /** swtpm on a UNIX socket, defaults otherwise. */
  public static TpmConfig unixSocket(String path) {
    return new TpmConfig(Transport.UNIX, path, null, 0, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_LOADED_OBJECTS, null);
  }

  /** swtpm's data port over TCP, defaults otherwise. */
  public static TpmConfig tcp(String host, int port) {
    return new TpmConfig(Transport.TCP, null, host, port, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_LOADED_OBJECTS, null);
  }

  /** A real TPM through the kernel resource manager, with the SRK persisted at 0x81000001. */
  public static TpmConfig device(String path) {
    return new TpmConfig(Transport.DEVICE, path, null, 0, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_LOADED_OBJECTS,
        DEFAULT_PERSISTENT_SRK);
  }

  public TpmConfig withMaxLoadedObjects(int n) {
    return new TpmConfig(transport, path, host, port, commandTimeout, n, persistentSrkHandle);
  }

  public TpmConfig withPersistentSrkHandle(Integer handle) {
    return new TpmConfig(transport, path, host, port, commandTimeout, maxLoadedObjects, handle);
  }

  public TpmConfig withCommandTimeout(Duration timeout) {
    return new TpmConfig(transport, path, host, port, timeout, maxLoadedObjects, persistentSrkHandle);
  }

  @Override public String toString() {
    return "TpmConfig[" + transport + " " + (transport == Transport.TCP ? host + ":" + port : path)
        + ", timeout " + commandTimeout + ", maxLoaded " + maxLoadedObjects
        + (persistentSrkHandle == null ? "" : ", SRK 0x" + Integer.toHexString(persistentSrkHandle)) + "]";
  }
}

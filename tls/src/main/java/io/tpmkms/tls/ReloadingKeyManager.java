package io.tpmkms.tls;

import java.net.Socket;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * One TLS identity (a certificate chain and its private key, from two PEM files) that can be
 * replaced while connections use it: the server's certificate of a tpmkms service, or the client
 * certificate it presents to another one.
 *
 * <p>Each generation of the identity has its own alias ({@code tpmkms-<n>}), and the last two
 * generations stay resolvable, so a handshake that chose its alias just before a reload still
 * gets the chain and the key of the same generation: a reload never fails a handshake in flight.
 * Connections already established keep their session; new ones get the new certificate.
 */
public final class ReloadingKeyManager extends X509ExtendedKeyManager implements Reloadable {
  private record Identity(String alias, X509Certificate[] chain, PrivateKey key, byte[] digest) {}

  private static final AtomicLong GENERATIONS = new AtomicLong();

  private final Path certificateFile;
  private final Path keyFile;
  private volatile Identity current;
  private volatile Identity previous;

  /** Reads both files now; throws {@link InvalidTlsFileException} when they are not a usable pair. */
  public ReloadingKeyManager(Path certificateFile, Path keyFile) {
    this.certificateFile = certificateFile;
    this.keyFile = keyFile;
    this.current = load(PemFiles.read(certificateFile), PemFiles.read(keyFile));
  }

  @Override
  public synchronized boolean reloadIfChanged() {
    byte[] cert = PemFiles.read(certificateFile);
    byte[] key = PemFiles.read(keyFile);
    if (Arrays.equals(digest(cert, key), current.digest())) return false;
    Identity next = load(cert, key);
    previous = current;
    current = next;
    return true;
  }

  @Override
  public String description() {
    return "certificate " + certificateFile + " (key " + keyFile + ")";
  }

  /** The certificate served now (its subject, serial and expiry are what operators check). */
  public X509Certificate certificate() {
    return current.chain()[0];
  }

  private Identity load(byte[] certPem, byte[] keyPem) {
    List<X509Certificate> chain = PemFiles.certificates(certificateFile, certPem);
    PrivateKey key = PemFiles.privateKey(keyFile, keyPem);
    if (!PemFiles.matches(key, chain.get(0).getPublicKey())) {
      throw new InvalidTlsFileException(keyFile, "is not the private key of the first certificate in "
          + certificateFile, null);
    }
    return new Identity("tpmkms-" + GENERATIONS.incrementAndGet(), chain.toArray(X509Certificate[]::new), key,
        digest(certPem, keyPem));
  }

  private static byte[] digest(byte[] cert, byte[] key) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(cert);
      md.update((byte) 0);
      md.update(key);
      return md.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private Identity byAlias(String alias) {
    Identity c = current;
    if (c.alias().equals(alias)) return c;
    Identity p = previous;
    return p != null && p.alias().equals(alias) ? p : null;
  }

  /** The current identity's alias when its key is of {@code keyType} (JSSE asks per signature scheme). */
  private String aliasFor(String keyType) {
    Identity c = current;
    return keyType != null && keyType.equalsIgnoreCase(c.key().getAlgorithm()) ? c.alias() : null;
  }

  private String aliasFor(String[] keyTypes) {
    if (keyTypes == null) return null;
    for (String t : keyTypes) {
      String a = aliasFor(t);
      if (a != null) return a;
    }
    return null;
  }

  @Override
  public String[] getClientAliases(String keyType, Principal[] issuers) {
    String a = aliasFor(keyType);
    return a == null ? null : new String[] {a};
  }

  @Override
  public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
    return aliasFor(keyTypes);
  }

  @Override
  public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
    return aliasFor(keyTypes);
  }

  @Override
  public String[] getServerAliases(String keyType, Principal[] issuers) {
    String a = aliasFor(keyType);
    return a == null ? null : new String[] {a};
  }

  @Override
  public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
    return aliasFor(keyType);
  }

  @Override
  public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
    return aliasFor(keyType);
  }

  @Override
  public X509Certificate[] getCertificateChain(String alias) {
    Identity i = byAlias(alias);
    return i == null ? null : i.chain().clone();
  }

  @Override
  public PrivateKey getPrivateKey(String alias) {
    Identity i = byAlias(alias);
    return i == null ? null : i.key();
  }
}

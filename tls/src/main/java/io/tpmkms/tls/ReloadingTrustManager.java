package io.tpmkms.tls;

import java.net.Socket;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The CAs trusted to sign the other side's certificate (a PEM bundle: {@code ca.crt}), replaced
 * when the file changes: the client CA of a server with mutual TLS, the CA bundle a client
 * verifies servers against. Validation is the JDK's PKIX (path, validity, key usage), and on a
 * client the host name check JSSE does for an endpoint identification algorithm of HTTPS (which
 * gRPC sets).
 */
public final class ReloadingTrustManager extends X509ExtendedTrustManager implements Reloadable {
  private record Trust(X509ExtendedTrustManager delegate, byte[] digest) {}

  private final Path caFile;
  private volatile Trust current;

  /** Reads the bundle now; throws {@link InvalidTlsFileException} when it holds no usable CA certificate. */
  public ReloadingTrustManager(Path caFile) {
    this.caFile = caFile;
    this.current = load(PemFiles.read(caFile));
  }

  @Override
  public synchronized boolean reloadIfChanged() {
    byte[] pem = PemFiles.read(caFile);
    if (Arrays.equals(digest(pem), current.digest())) return false;
    current = load(pem);
    return true;
  }

  @Override
  public String description() {
    return "CA bundle " + caFile;
  }

  private Trust load(byte[] pem) {
    List<X509Certificate> cas = PemFiles.certificates(caFile, pem);
    try {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      for (int i = 0; i < cas.size(); i++) ks.setCertificateEntry("ca-" + i, cas.get(i));
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(ks);
      for (TrustManager tm : tmf.getTrustManagers()) {
        if (tm instanceof X509ExtendedTrustManager x) return new Trust(x, digest(pem));
      }
      throw new IllegalStateException("the JDK's PKIX TrustManagerFactory made no X509ExtendedTrustManager");
    } catch (GeneralSecurityException | java.io.IOException e) {
      throw new InvalidTlsFileException(caFile, "cannot be used as a CA bundle (" + e.getMessage() + ")", e);
    }
  }

  private static byte[] digest(byte[] pem) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(pem);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    current.delegate().checkClientTrusted(chain, authType, socket);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    current.delegate().checkServerTrusted(chain, authType, socket);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    current.delegate().checkClientTrusted(chain, authType, engine);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    current.delegate().checkServerTrusted(chain, authType, engine);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    current.delegate().checkClientTrusted(chain, authType);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    current.delegate().checkServerTrusted(chain, authType);
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return current.delegate().getAcceptedIssuers();
  }
}

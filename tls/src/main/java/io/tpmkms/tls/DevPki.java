package io.tpmkms.tls;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaMiscPEMGenerator;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A development certificate authority: what {@code ./run --tls} puts under {@code .tpmkms/tls}
 * and what the TLS tests make their good and bad certificates with. ECDSA P-256 keys, SHA-256
 * signatures, X.509 v3 with the extensions a strict client checks (basic constraints, key usage,
 * extended key usage server+client auth, subject alternative names, key identifiers).
 * <b>Not</b> for production: production certificates come from the operator's PKI or
 * cert-manager (docs/operations.md).
 */
public final class DevPki {
  private static final SecureRandom RANDOM = new SecureRandom();

  /** A certificate with its private key. */
  public record Issued(X509Certificate certificate, KeyPair keys) {
    /** Writes the certificate (PEM) and the key (PKCS#8 PEM, mode 600), each replaced atomically. */
    public void write(Path certFile, Path keyFile) {
      writeAtomically(certFile, pem(certificate), false);
      writeAtomically(keyFile, pkcs8(keys), true);
    }
  }

  /** A CA that issues leaf certificates. */
  public static final class Authority {
    private final Issued self;

    private Authority(Issued self) {
      this.self = self;
    }

    public X509Certificate certificate() {
      return self.certificate();
    }

    /** Writes the CA certificate (what clients and servers trust), PEM. */
    public void writeCertificate(Path file) {
      writeAtomically(file, pem(self.certificate()), false);
    }

    /** Writes the CA's certificate and key, for a later {@link #load}. */
    public void write(Path certFile, Path keyFile) {
      self.write(certFile, keyFile);
    }

    /**
     * A leaf certificate valid for server and client authentication, for {@code names} (DNS
     * names or IP literals; the first is also the common name), valid from now for {@code validity}.
     */
    public Issued issue(List<String> names, Duration validity) {
      Instant now = Instant.now();
      return issue(names, now.minusSeconds(60), now.plus(validity));
    }

    /** The same with an explicit validity window (the tests make expired certificates with it). */
    public Issued issue(List<String> names, Instant notBefore, Instant notAfter) {
      try {
        KeyPair keys = newKeyPair();
        JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(self.certificate(), serial(),
            Date.from(notBefore), Date.from(notAfter), new X500Name("CN=" + names.get(0) + ",O=tpmkms dev"),
            keys.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
        b.addExtension(Extension.extendedKeyUsage, false,
            new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
        List<GeneralName> sans = new ArrayList<>();
        for (String n : names) {
          sans.add(isIp(n) ? new GeneralName(GeneralName.iPAddress, n) : new GeneralName(GeneralName.dNSName, n));
        }
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(GeneralName[]::new)));
        b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
        b.addExtension(Extension.authorityKeyIdentifier, false,
            ext.createAuthorityKeyIdentifier(self.certificate()));
        return new Issued(sign(b, self.keys()), keys);
      } catch (GeneralSecurityException | IOException e) {
        throw new IllegalStateException("cannot issue a development certificate", e);
      }
    }
  }

  private DevPki() {}

  /**
   * The development set under {@code dir}: {@code ca.crt}/{@code ca.key} and, for each name,
   * {@code <name>.crt}/{@code <name>.key} valid for that name, localhost, 127.0.0.1 and ::1 (server and
   * client authentication). What exists and is valid for 30 more days is kept (so clients that
   * trust the CA keep trusting it); the rest is made anew. Returns the CA certificate file.
   */
  public static Path ensureDevelopmentSet(Path dir, List<String> names) {
    Path caCert = dir.resolve("ca.crt");
    Path caKey = dir.resolve("ca.key");
    Instant soon = Instant.now().plus(Duration.ofDays(30));
    Authority ca = null;
    if (java.nio.file.Files.isRegularFile(caCert) && java.nio.file.Files.isRegularFile(caKey)) {
      try {
        Authority existing = load(caCert, caKey);
        if (existing.certificate().getNotAfter().toInstant().isAfter(soon)) ca = existing;
      } catch (RuntimeException e) {
        ca = null;
      }
    }
    if (ca == null) {
      ca = newAuthority("tpmkms development CA", Duration.ofDays(5 * 365));
      ca.write(caCert, caKey);
    }
    for (String name : names) {
      Path cert = dir.resolve(name + ".crt");
      Path key = dir.resolve(name + ".key");
      if (usable(cert, key, ca, soon)) continue;
      ca.issue(List.of(name, "localhost", "127.0.0.1", "::1"), Duration.ofDays(365)).write(cert, key);
    }
    return caCert;
  }

  private static boolean usable(Path cert, Path key, Authority ca, Instant soon) {
    try {
      X509Certificate c = PemFiles.certificates(cert).get(0);
      c.verify(ca.certificate().getPublicKey());
      return c.getNotAfter().toInstant().isAfter(soon) && PemFiles.matches(PemFiles.privateKey(key), c.getPublicKey());
    } catch (RuntimeException | GeneralSecurityException e) {
      return false;
    }
  }

  /** {@code DevPki DIR NAME...}: {@link #ensureDevelopmentSet}; prints the CA file. For ./run --tls. */
  public static void main(String[] args) {
    if (args.length < 1) {
      System.err.println("usage: DevPki DIR [NAME...]");
      System.exit(2);
    }
    System.out.println(ensureDevelopmentSet(Path.of(args[0]), List.of(args).subList(1, args.length)));
  }

  /** A new self-signed CA named {@code name}, valid from now for {@code validity}. */
  public static Authority newAuthority(String name, Duration validity) {
    try {
      KeyPair keys = newKeyPair();
      Instant now = Instant.now();
      X500Name subject = new X500Name("CN=" + name + ",O=tpmkms dev");
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(), Date.from(now.minusSeconds(60)),
          Date.from(now.plus(validity)), subject, keys.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
      return new Authority(new Issued(sign(b, keys), keys));
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("cannot make a development CA", e);
    }
  }

  /** A CA written earlier with {@link Authority#write}. */
  public static Authority load(Path certFile, Path keyFile) {
    X509Certificate cert = PemFiles.certificates(certFile).get(0);
    var key = PemFiles.privateKey(keyFile);
    return new Authority(new Issued(cert, new KeyPair(cert.getPublicKey(), key)));
  }

  private static X509Certificate sign(X509v3CertificateBuilder b, KeyPair issuer) throws GeneralSecurityException {
    try {
      ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(issuer.getPrivate());
      return new JcaX509CertificateConverter().getCertificate(b.build(signer));
    } catch (org.bouncycastle.operator.OperatorCreationException e) {
      throw new GeneralSecurityException(e);
    }
  }

  private static KeyPair newKeyPair() throws GeneralSecurityException {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
    return g.generateKeyPair();
  }

  private static BigInteger serial() {
    return new BigInteger(127, RANDOM).add(BigInteger.ONE);
  }

  private static boolean isIp(String name) {
    if (name.contains(":")) return true;
    return name.matches("\\d{1,3}(\\.\\d{1,3}){3}");
  }

  static String pem(X509Certificate cert) {
    try {
      return pemOf(new JcaMiscPEMGenerator(cert));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String pkcs8(KeyPair keys) {
    try {
      return pemOf(new JcaPKCS8Generator(keys.getPrivate(), null));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String pemOf(org.bouncycastle.util.io.pem.PemObjectGenerator g) {
    StringWriter s = new StringWriter();
    try (JcaPEMWriter w = new JcaPEMWriter(s)) {
      w.writeObject(g);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return s.toString();
  }

  private static void writeAtomically(Path file, String content, boolean secret) {
    try {
      Path dir = file.toAbsolutePath().getParent();
      Files.createDirectories(dir);
      Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp");
      if (secret) Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
      Files.writeString(tmp, content, StandardCharsets.US_ASCII);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new IllegalStateException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }
}

package io.tpmkms.key.imports;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;

/**
 * The client side of an import done with the openssl command line alone (the
 * interop check of issue 12): key material, the job's wrapping, signature checks
 * and HMAC tags come from openssl, never from the service's own code.
 */
final class Openssl {
  private final Path dir;
  private int seq;

  Openssl() throws IOException {
    this.dir = Files.createTempDirectory("tpmkms-import-");
  }

  /** Runs openssl; stdout, after asserting exit 0. */
  byte[] run(String... args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add("openssl");
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(false).start();
    byte[] out = p.getInputStream().readAllBytes();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), () -> String.join(" ", cmd) + " failed: " + err);
    return out;
  }

  Path file(String name, byte[] content) throws IOException {
    Path f = dir.resolve(name);
    Files.write(f, content);
    return f;
  }

  Path fresh(String prefix) {
    return dir.resolve(prefix + "-" + (++seq));
  }

  /** {@code openssl rand n}. */
  byte[] rand(int n) throws Exception {
    Path f = fresh("rand");
    run("rand", "-out", f.toString(), Integer.toString(n));
    return Files.readAllBytes(f);
  }

  /** A fresh private key as PKCS#8 DER ({@code genpkey} then {@code pkcs8 -topk8 -nocrypt}). */
  byte[] pkcs8(String... genpkeyOpts) throws Exception {
    Path pem = fresh("key");
    List<String> args = new ArrayList<>(List.of("genpkey"));
    args.addAll(List.of(genpkeyOpts));
    args.addAll(List.of("-out", pem.toString()));
    run(args.toArray(String[]::new));
    Path der = fresh("p8");
    run("pkcs8", "-topk8", "-nocrypt", "-in", pem.toString(), "-outform", "DER", "-out", der.toString());
    return Files.readAllBytes(der);
  }

  byte[] ecP256() throws Exception {
    return pkcs8("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256");
  }

  /** The public key openssl derives from a PKCS#8 DER private key, as a PEM file. */
  Path publicKeyPem(byte[] pkcs8) throws Exception {
    Path in = file("priv-" + (++seq) + ".der", pkcs8);
    Path out = fresh("pub");
    run("pkey", "-inform", "DER", "-in", in.toString(), "-pubout", "-out", out.toString());
    return out;
  }

  /**
   * The wrapped key for a job's public key: {@code pkeyutl -encrypt} (RSA-OAEP, SHA-256, MGF1-SHA-256) of a
   * one-time AES-256 key made by {@code openssl rand}, then {@code enc -id-aes256-wrap-pad} (AES-KWP) of the
   * material under it; or, {@code direct}, OAEP of the material itself.
   */
  byte[] wrap(String jobPublicKeyPem, byte[] material, boolean direct) throws Exception {
    Path pub = file("job-" + (++seq) + ".pem", jobPublicKeyPem.getBytes(StandardCharsets.US_ASCII));
    Path mat = file("material-" + seq + ".bin", material);
    if (direct) return oaep(pub, mat);
    byte[] k = rand(32);
    Path kf = file("kek-" + seq + ".bin", k);
    byte[] head = oaep(pub, kf);
    Path kwp = fresh("kwp");
    run("enc", "-id-aes256-wrap-pad", "-K", HexFormat.of().formatHex(k), "-iv", "A65959A6",
        "-in", mat.toString(), "-out", kwp.toString());
    byte[] tail = Files.readAllBytes(kwp);
    byte[] out = new byte[head.length + tail.length];
    System.arraycopy(head, 0, out, 0, head.length);
    System.arraycopy(tail, 0, out, head.length, tail.length);
    return out;
  }

  private byte[] oaep(Path pub, Path in) throws Exception {
    Path out = fresh("oaep");
    run("pkeyutl", "-encrypt", "-pubin", "-inkey", pub.toString(), "-pkeyopt", "rsa_padding_mode:oaep",
        "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256", "-in", in.toString(),
        "-out", out.toString());
    return Files.readAllBytes(out);
  }

  /** Whether {@code openssl dgst -sha256 -verify} accepts a DER ECDSA/RSA signature of data. */
  boolean verifies(Path publicKeyPem, byte[] data, byte[] signature) throws Exception {
    Path d = file("data-" + (++seq) + ".bin", data);
    Path s = file("sig-" + seq + ".bin", signature);
    Process p = new ProcessBuilder("openssl", "dgst", "-sha256", "-verify", publicKeyPem.toString(),
        "-signature", s.toString(), d.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return p.waitFor() == 0 && out.contains("Verified OK");
  }

  /** {@code openssl mac -digest SHA256 -macopt hexkey:... HMAC} of data, as bytes. */
  byte[] hmacSha256(byte[] key, byte[] data) throws Exception {
    Path d = file("macdata-" + (++seq) + ".bin", data);
    String hex = new String(run("mac", "-digest", "SHA256", "-macopt", "hexkey:" + HexFormat.of().formatHex(key),
        "-in", d.toString(), "HMAC"), StandardCharsets.US_ASCII).trim();
    return HexFormat.of().parseHex(hex.toLowerCase());
  }

  static byte[] der(String pem) {
    return Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", "").trim());
  }
}

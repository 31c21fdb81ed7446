package io.tpmkms.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * The tpm2-tools baseline: ECDSA P-256 signing with one {@code tpm2_sign} process per operation,
 * as a shell script would do it. Setup (untimed): {@code tpm2_createprimary} of the SRK with the
 * template of docs/tpm-adapter.md (noDA included, so it is the backend's SRK), {@code tpm2_create}
 * of an ECC P-256 signing key, {@code tpm2_load} into a context file. Then each operation is
 * {@code tpm2_sign -c key.ctx -g sha256 -d -f plain -o sig.bin digest.bin}, timed from process start
 * to exit.
 *
 * <p>swtpm has no resource manager, so every tpm2-tools process leaves the objects it loaded in the
 * TPM (which holds three): a {@code tpm2_flushcontext -t} runs after each step and after each
 * signature, outside the timing. Must not run while a Java client holds the swtpm connection.
 */
final class Tpm2SignLoop {

    private static final String SRK_ATTRIBUTES =
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt";
    private static final long HIGHEST_TRACKABLE_NANOS = TimeUnit.SECONDS.toNanos(60);

    private Tpm2SignLoop() {
    }

    /** Whether the tpm2-tools this loop needs are on the PATH. */
    static boolean available() {
        for (String exe : List.of("tpm2_createprimary", "tpm2_create", "tpm2_load", "tpm2_sign", "tpm2_flushcontext")) {
            boolean found = false;
            for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
                if (!d.isEmpty() && Files.isExecutable(Path.of(d, exe))) {
                    found = true;
                    break;
                }
            }
            if (!found) {
                return false;
            }
        }
        return true;
    }

    /**
     * Runs {@code iterations} signatures (after two unmeasured ones) and verifies the last with JCA
     * against the public key tpm2_create wrote.
     *
     * @param tcti e.g. {@code swtpm:path=/tmp/…/tpm.sock}
     */
    static Measurement run(String tcti, int iterations) throws Exception {
        Path dir = Files.createTempDirectory("tpmkms-bench-tpm2-");
        try {
            byte[] data = new byte[GrpcWorkloads.PAYLOAD_BYTES];
            new SecureRandom().nextBytes(data);
            Files.write(dir.resolve("digest.bin"), MessageDigest.getInstance("SHA-256").digest(data));
            flushTransient(dir, tcti);
            tool(dir, tcti, "tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a", SRK_ATTRIBUTES,
                    "-c", "srk.ctx");
            flushTransient(dir, tcti);
            tool(dir, tcti, "tpm2_create", "-C", "srk.ctx", "-G", "ecc256", "-u", "key.pub", "-r", "key.priv",
                    "-f", "pem", "-o", "key.pem");
            flushTransient(dir, tcti);
            tool(dir, tcti, "tpm2_load", "-C", "srk.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx");
            flushTransient(dir, tcti);

            List<String> sign = List.of("tpm2_sign", "-c", "key.ctx", "-g", "sha256", "-d", "-f", "plain",
                    "-o", "sig.bin", "digest.bin");
            for (int i = 0; i < 2; i++) { // page in the binaries and libraries
                tool(dir, tcti, sign.toArray(String[]::new));
                flushTransient(dir, tcti);
            }
            Histogram latency = new Histogram(HIGHEST_TRACKABLE_NANOS, 3);
            long total = 0;
            long errors = 0;
            String firstError = null;
            long ok = 0;
            for (int i = 0; i < iterations; i++) {
                Files.deleteIfExists(dir.resolve("sig.bin"));
                long t0 = System.nanoTime();
                try {
                    tool(dir, tcti, sign.toArray(String[]::new));
                    long elapsed = System.nanoTime() - t0;
                    total += elapsed;
                    latency.recordValue(Math.min(elapsed, HIGHEST_TRACKABLE_NANOS));
                    ok++;
                } catch (Exception e) {
                    errors++;
                    if (firstError == null) {
                        firstError = LoadRunner.describe(e);
                    }
                }
                flushTransient(dir, tcti);
            }
            try {
                verify(dir, data);
            } catch (Exception e) {
                errors++;
                if (firstError == null) {
                    firstError = "sample check: " + LoadRunner.describe(e);
                }
            }
            return new Measurement("tpm2-sign", "tpm2_sign ECDSA P-256, one process per op", 1, ok, total / 1e9,
                    latency.getTotalCount() == 0 ? 0 : latency.getValueAtPercentile(50) / 1e3,
                    latency.getTotalCount() == 0 ? 0 : latency.getValueAtPercentile(99) / 1e3,
                    errors, firstError);
        } finally {
            deleteRecursively(dir);
        }
    }

    private static void verify(Path dir, byte[] data) throws Exception {
        String pem = Files.readString(dir.resolve("key.pem"), StandardCharsets.US_ASCII);
        String body = pem.replaceAll("-----(BEGIN|END) PUBLIC KEY-----", "").replaceAll("\\s", "");
        PublicKey key = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(body)));
        Signature v = Signature.getInstance("SHA256withECDSA");
        v.initVerify(key);
        v.update(data);
        if (!v.verify(Files.readAllBytes(dir.resolve("sig.bin")))) { // -f plain: DER for ECDSA
            throw new IllegalStateException("the last tpm2_sign signature does not verify (JCA)");
        }
    }

    private static void flushTransient(Path dir, String tcti) throws Exception {
        tool(dir, tcti, "tpm2_flushcontext", "-t");
    }

    /** Runs one tool in {@code dir} with the TCTI; fails with its output on a non-zero exit. */
    private static void tool(Path dir, String tcti, String... command) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(command));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().put("TPM2TOOLS_TCTI", tcti);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(command[0] + " timed out");
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " exited " + p.exitValue() + ": "
                    + new String(out, StandardCharsets.UTF_8).strip());
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}

package io.tpmkms.cli.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.key.v1.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CryptoCommandTest extends CliHarness {

    static final byte[] PLAINTEXT = "attack at dawn\n".getBytes(StandardCharsets.UTF_8);
    static final byte[] CIPHERTEXT = {1, 0, 0, 0, 2, (byte) 0xde, (byte) 0xad, 0, (byte) 0xff, 10, 13};

    @TempDir
    Path dir;

    static ByteString bytes(byte[] b) {
        return ByteString.copyFrom(b);
    }

    @Test
    void encrypt_fileToFile_sendsPlaintextAndAad_writesCiphertextOnly() throws Exception {
        Path in = Files.write(dir.resolve("plain.txt"), PLAINTEXT);
        Path out = dir.resolve("cipher.bin");
        service.respond(EncryptResponse.newBuilder().setCiphertext(bytes(CIPHERTEXT)).setVersion(2).build());

        Result r = run("encrypt", "ns/orders", "--in", in.toString(), "--out", out.toString(), "--aad", "order-42");

        assertEquals(0, r.exitCode(), r::toString);
        EncryptRequest req = service.only(EncryptRequest.class);
        assertEquals("ns/orders", req.getKey());
        assertEquals(bytes(PLAINTEXT), req.getPlaintext());
        assertEquals(ByteString.copyFromUtf8("order-42"), req.getAdditionalAuthenticatedData());
        assertArrayEquals(CIPHERTEXT, Files.readAllBytes(out));
        assertEquals(0, r.stdoutBytes().length, r::toString);
        assertEquals("", r.stderr());
    }

    @Test
    void encrypt_stdinToStdout_passesBytesThroughUnchanged() {
        service.respond(EncryptResponse.newBuilder().setCiphertext(bytes(CIPHERTEXT)).setVersion(2).build());

        Result r = runWithStdin(PLAINTEXT, "encrypt", "ns/orders");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(bytes(PLAINTEXT), service.only(EncryptRequest.class).getPlaintext());
        assertTrue(service.only(EncryptRequest.class).getAdditionalAuthenticatedData().isEmpty());
        assertArrayEquals(CIPHERTEXT, r.stdoutBytes());
    }

    @Test
    void encrypt_json_printsBase64CiphertextAndVersion() {
        service.respond(EncryptResponse.newBuilder().setCiphertext(bytes(CIPHERTEXT)).setVersion(2).build());

        Result r = runWithStdin(PLAINTEXT, "encrypt", "ns/orders", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("\"ciphertext\": \"" + Base64.getEncoder().encodeToString(CIPHERTEXT) + "\""),
                r::toString);
        assertTrue(r.stdout().contains("\"version\": 2"), r::toString);
    }

    @Test
    void encrypt_inputOver64KiB_isUsageErrorAndSendsNothing() {
        Result r = runWithStdin(new byte[64 * 1024 + 1], "encrypt", "ns/orders");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("at most 64 KiB"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void decrypt_fileToFile_sendsCiphertextAndAadFile_writesOwnerOnlyFile() throws Exception {
        Path in = Files.write(dir.resolve("cipher.bin"), CIPHERTEXT);
        Path aad = Files.write(dir.resolve("aad.bin"), new byte[] {9, 8, 7});
        Path out = dir.resolve("plain.txt");
        service.respond(DecryptResponse.newBuilder().setPlaintext(bytes(PLAINTEXT)).setVersion(2).build());

        Result r = run("decrypt", "ns/orders", "--in", in.toString(), "--out", out.toString(), "--aad-file", aad.toString());

        assertEquals(0, r.exitCode(), r::toString);
        DecryptRequest req = service.only(DecryptRequest.class);
        assertEquals(bytes(CIPHERTEXT), req.getCiphertext());
        assertEquals(bytes(new byte[] {9, 8, 7}), req.getAdditionalAuthenticatedData());
        assertArrayEquals(PLAINTEXT, Files.readAllBytes(out));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        assertEquals(0, r.stdoutBytes().length);
    }

    @Test
    void decrypt_stdinToStdout_writesOnlyThePlaintext() {
        service.respond(DecryptResponse.newBuilder().setPlaintext(bytes(PLAINTEXT)).setVersion(2).build());

        Result r = runWithStdin(CIPHERTEXT, "decrypt", "ns/orders");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(bytes(CIPHERTEXT), service.only(DecryptRequest.class).getCiphertext());
        assertArrayEquals(PLAINTEXT, r.stdoutBytes());
        assertEquals("", r.stderr());
    }

    @Test
    void aadAndAadFile_together_isUsageError() {
        Result r = runWithStdin(CIPHERTEXT, "decrypt", "ns/orders", "--aad", "x", "--aad-file", "y");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void dataKey_writesWrappedKeyToFileAndPlaintextToStdout() throws Exception {
        byte[] dek = new byte[16];
        dek[0] = 42;
        Path wrapped = dir.resolve("dek.enc");
        service.respond(GenerateDataKeyResponse.newBuilder()
                .setPlaintext(bytes(dek)).setCiphertext(bytes(CIPHERTEXT)).setVersion(1).build());

        Result r = run("data-key", "ns/orders", "--length", "16", "--out-ciphertext", wrapped.toString(), "--aad", "ctx");

        assertEquals(0, r.exitCode(), r::toString);
        GenerateDataKeyRequest req = service.only(GenerateDataKeyRequest.class);
        assertEquals(16, req.getLengthBytes());
        assertFalse(req.getOmitPlaintext());
        assertEquals(ByteString.copyFromUtf8("ctx"), req.getAdditionalAuthenticatedData());
        assertArrayEquals(CIPHERTEXT, Files.readAllBytes(wrapped));
        assertArrayEquals(dek, r.stdoutBytes());
    }

    @Test
    void dataKey_omitPlaintext_asksForNoPlaintextAndPrintsNone() throws Exception {
        Path wrapped = dir.resolve("dek.enc");
        service.respond(GenerateDataKeyResponse.newBuilder().setCiphertext(bytes(CIPHERTEXT)).setVersion(1).build());

        Result r = run("data-key", "ns/orders", "--omit-plaintext", "--out-ciphertext", wrapped.toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(service.only(GenerateDataKeyRequest.class).getOmitPlaintext());
        assertEquals(32, service.only(GenerateDataKeyRequest.class).getLengthBytes());
        assertEquals(0, r.stdoutBytes().length, r::toString);
        assertArrayEquals(CIPHERTEXT, Files.readAllBytes(wrapped));
    }

    @Test
    void dataKey_withoutCiphertextTarget_isUsageError() {
        Result r = run("data-key", "ns/orders");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("--out-ciphertext"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void sign_data_sendsDataAndWritesRawSignature() throws Exception {
        byte[] sig = {0x30, 0x45, 0x02, 0x20, 7};
        Path out = dir.resolve("sig.der");
        service.respond(SignResponse.newBuilder().setSignature(bytes(sig)).setVersion(3).build());

        Result r = runWithStdin(PLAINTEXT, "sign", "ns/release", "--out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        SignRequest req = service.only(SignRequest.class);
        assertEquals(SignRequest.InputCase.DATA, req.getInputCase());
        assertEquals(bytes(PLAINTEXT), req.getData());
        assertEquals(0, req.getVersion());
        assertArrayEquals(sig, Files.readAllBytes(out));
    }

    @Test
    void sign_digestWithVersion_sendsDigest() {
        byte[] digest = new byte[32];
        digest[31] = 1;

        Result r = runWithStdin(digest, "sign", "ns/release", "--digest", "--version", "2");

        assertEquals(0, r.exitCode(), r::toString);
        SignRequest req = service.only(SignRequest.class);
        assertEquals(SignRequest.InputCase.DIGEST, req.getInputCase());
        assertEquals(bytes(digest), req.getDigest());
        assertEquals(2, req.getVersion());
    }

    @Test
    void verify_valid_exits0() throws Exception {
        Path sig = Files.write(dir.resolve("sig"), new byte[] {5, 6, 7});
        Path data = Files.write(dir.resolve("data"), PLAINTEXT);
        service.respond(VerifyResponse.newBuilder().setValid(true).setVersion(3).build());

        Result r = run("verify", "ns/release", "--version", "3", "--signature", sig.toString(), "--in", data.toString());

        assertEquals(0, r.exitCode(), r::toString);
        VerifyRequest req = service.only(VerifyRequest.class);
        assertEquals(3, req.getVersion());
        assertEquals(bytes(new byte[] {5, 6, 7}), req.getSignature());
        assertEquals(bytes(PLAINTEXT), req.getData());
        assertTrue(r.stdout().contains("signature valid"), r::toString);
    }

    @Test
    void verify_invalid_exits1WithMessageOnStderr() throws Exception {
        Path sig = Files.write(dir.resolve("sig"), new byte[] {5, 6, 7});
        service.respond(VerifyResponse.newBuilder().setValid(false).setVersion(3).build());

        Result r = runWithStdin(PLAINTEXT, "verify", "ns/release", "--version", "3", "--signature", sig.toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertEquals("signature INVALID\n", r.stderr());
        assertEquals("", r.stdout());
    }

    @Test
    void verify_invalidWithJson_printsValidFalseAndExits1() throws Exception {
        Path sig = Files.write(dir.resolve("sig"), new byte[] {5});
        service.respond(VerifyResponse.newBuilder().setValid(false).setVersion(3).build());

        Result r = runWithStdin(PLAINTEXT, "verify", "ns/release", "--version", "3", "--signature", sig.toString(), "--json");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("\"valid\": false"), r::toString);
    }

    @Test
    void asymmetricDecrypt_sendsVersionAndCiphertext() {
        service.respond(AsymmetricDecryptResponse.newBuilder().setPlaintext(bytes(PLAINTEXT)).setVersion(1).build());

        Result r = runWithStdin(CIPHERTEXT, "asymmetric-decrypt", "ns/inbox", "--version", "1");

        assertEquals(0, r.exitCode(), r::toString);
        AsymmetricDecryptRequest req = service.only(AsymmetricDecryptRequest.class);
        assertEquals(1, req.getVersion());
        assertEquals(bytes(CIPHERTEXT), req.getCiphertext());
        assertArrayEquals(PLAINTEXT, r.stdoutBytes());
    }

    @Test
    void publicKey_writesPemToFile() throws Exception {
        String pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
        Path out = dir.resolve("pub.pem");
        service.respond(GetPublicKeyResponse.newBuilder()
                .setPem(pem).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256).setVersion(2).build());

        Result r = run("public-key", "ns/release", "--version", "2", "--out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(2, service.only(GetPublicKeyRequest.class).getVersion());
        assertEquals(pem, Files.readString(out));
    }

    @Test
    void mac_sendsDataAndWritesMac() {
        byte[] mac = new byte[32];
        mac[0] = 77;
        service.respond(MacSignResponse.newBuilder().setMac(bytes(mac)).setVersion(1).build());

        Result r = runWithStdin(PLAINTEXT, "mac", "ns/tokens");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(bytes(PLAINTEXT), service.only(MacSignRequest.class).getData());
        assertArrayEquals(mac, r.stdoutBytes());
    }

    @Test
    void macVerify_invalid_exits1() throws Exception {
        Path mac = Files.write(dir.resolve("mac"), new byte[] {1, 2});
        service.respond(MacVerifyResponse.newBuilder().setValid(false).setVersion(1).build());

        Result r = runWithStdin(PLAINTEXT, "mac-verify", "ns/tokens", "--version", "1", "--mac", mac.toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertEquals("MAC INVALID\n", r.stderr());
        MacVerifyRequest req = service.only(MacVerifyRequest.class);
        assertEquals(bytes(new byte[] {1, 2}), req.getMac());
        assertEquals(1, req.getVersion());
    }

    @Test
    void macVerify_valid_exits0() throws Exception {
        Path mac = Files.write(dir.resolve("mac"), new byte[] {1, 2});
        service.respond(MacVerifyResponse.newBuilder().setValid(true).setVersion(1).build());

        Result r = runWithStdin(PLAINTEXT, "mac-verify", "ns/tokens", "--version", "1", "--mac", mac.toString());

        assertEquals(0, r.exitCode(), r::toString);
    }

    @Test
    void random_hexFromTpm() {
        service.respond(GenerateRandomResponse.newBuilder().setData(bytes(new byte[] {0, 1, (byte) 0xab})).build());

        Result r = run("random", "3", "--protection", "tpm");

        assertEquals(0, r.exitCode(), r::toString);
        GenerateRandomRequest req = service.only(GenerateRandomRequest.class);
        assertEquals(3, req.getLengthBytes());
        assertEquals(ProtectionLevel.TPM, req.getProtectionLevel());
        assertEquals("0001ab\n", r.stdout());
    }

    @Test
    void random_base64AndRaw() {
        byte[] data = {(byte) 0xfb, (byte) 0xff, 0};
        service.respond(GenerateRandomResponse.newBuilder().setData(bytes(data)).build(),
                GenerateRandomResponse.newBuilder().setData(bytes(data)).build());

        assertEquals("+/8A\n", run("random", "3", "--format", "base64").stdout());
        assertArrayEquals(data, run("random", "3", "--format", "raw").stdoutBytes());
    }

    @Test
    void random_outOfRange_isUsageError() {
        Result r = run("random", "4096");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void help_worksOnCommandsWithTheirOwnVersionOption() {
        for (String command : new String[] {"sign", "verify", "asymmetric-decrypt", "mac-verify", "public-key"}) {
            Result r = run(command, "--help");
            assertEquals(0, r.exitCode(), r::toString);
            assertTrue(r.stdout().contains("Usage: tpmkms " + command), r::toString);
        }
        for (String sub : new String[] {"get", "verify"}) {
            Result r = run("attestation", sub, "--help");
            assertEquals(0, r.exitCode(), r::toString);
            assertTrue(r.stdout().contains("Usage: tpmkms attestation " + sub), r::toString);
        }
        assertTrue(service.requests().isEmpty());
    }
}

package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.AsymmetricDecryptRequest;
import io.tpmkms.proto.key.v1.AsymmetricDecryptResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "asymmetric-decrypt", description = {
        "Decrypt an RSA-OAEP (SHA-256, empty label) ciphertext made with the key's public key."})
public final class AsymmetricDecryptCommand extends KmsCommand {
    // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of an asymmetric-decrypt key.")
    String key;

    @Option(names = "--version", required = true, paramLabel = "N", description = "Version whose public key encrypted.")
    int version;

    @Mixin
    CryptoOptions.Input input;

    @Mixin
    CryptoOptions.Output output;

    @Override
    protected int run(Session s) throws Exception {
        AsymmetricDecryptResponse response = s.keys().asymmetricDecrypt(AsymmetricDecryptRequest.newBuilder()
                .setKey(key)
                .setVersion(version)
                .setCiphertext(ByteString.copyFrom(s.read(input.in)))
                .build());
        if (!s.json() || output.toFile()) {
            s.writeSecret(output.out, response.getPlaintext().toByteArray());
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

package io.tpmkms.cli.crypto;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.GenerateDataKeyRequest;
import io.tpmkms.proto.key.v1.GenerateDataKeyResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "data-key", description = {
        "Generate a data key for envelope encryption.",
        "The key in clear goes to --out, wrapped under KEY to --out-ciphertext; 'decrypt' unwraps it."})
public final class DataKeyCommand extends KmsCommand {
    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of an encrypt key.")
    String key;

    @Option(names = "--length", paramLabel = "BYTES", defaultValue = "32", description = "16 or 32 (default).")
    int length;

    @Option(names = "--out-ciphertext", paramLabel = "FILE", description = "Where the wrapped data key goes.")
    String outCiphertext;

    @Option(names = "--omit-plaintext", description = "Only return the wrapped data key.")
    boolean omitPlaintext;

    @Mixin
    CryptoOptions.Output output;

    @Mixin
    CryptoOptions.Aad aad;

    @Override
    protected int run(Session s) throws Exception {
        if (length != 16 && length != 32) {
            throw usage("--length must be 16 or 32, got " + length);
        }
        // Without --json the wrapped key must go somewhere: a file, or stdout when no plaintext comes back.
        String ciphertextTarget = outCiphertext != null ? outCiphertext : (omitPlaintext ? "-" : null);
        if (!s.json() && ciphertextTarget == null) {
            throw usage("--out-ciphertext FILE is required (or --omit-plaintext, or --json)");
        }
        if (!omitPlaintext && Session.isStdio(ciphertextTarget) && !output.toFile() && !s.json()) {
            throw usage("the data key and its ciphertext cannot both go to stdout");
        }
        GenerateDataKeyResponse response = s.keys().generateDataKey(GenerateDataKeyRequest.newBuilder()
                .setKey(key)
                .setLengthBytes(length)
                .setOmitPlaintext(omitPlaintext)
                .setAdditionalAuthenticatedData(aad.bytes())
                .build());
        if (outCiphertext != null || !s.json()) {
            s.write(ciphertextTarget, response.getCiphertext().toByteArray());
        }
        if (!omitPlaintext && (!s.json() || output.toFile())) {
            s.writeSecret(output.out, response.getPlaintext().toByteArray());
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "encrypt", description = {
        "Encrypt up to 64 KiB with the key's primary version.",
        "The ciphertext names its version; 'decrypt' needs only the key name."})
public final class EncryptCommand extends KmsCommand {
    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of an encrypt key.")
    String key;

    @Mixin
    CryptoOptions.Input input;

    @Mixin
    CryptoOptions.Output output;

    @Mixin
    CryptoOptions.Aad aad;

    @Override
    protected int run(Session s) throws Exception {
        EncryptRequest request = EncryptRequest.newBuilder()
                .setKey(key)
                .setPlaintext(ByteString.copyFrom(input.read(s, spec)))
                .setAdditionalAuthenticatedData(aad.bytes())
                .build();
        EncryptResponse response = s.keys().encrypt(request);
        if (!s.json() || output.toFile()) {
            s.write(output.out, response.getCiphertext().toByteArray());
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

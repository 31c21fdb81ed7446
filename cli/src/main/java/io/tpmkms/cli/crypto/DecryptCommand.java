package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.DecryptResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "decrypt", description = {
        "Decrypt a ciphertext from 'encrypt' or 'data-key'. A new --out file is created readable by its owner only."})
public final class DecryptCommand extends KmsCommand {
    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of the key that encrypted.")
    String key;

    @Mixin
    CryptoOptions.Input input;

    @Mixin
    CryptoOptions.Output output;

    @Mixin
    CryptoOptions.Aad aad;

    @Override
    protected int run(Session s) throws Exception {
        DecryptRequest request = DecryptRequest.newBuilder()
                .setKey(key)
                .setCiphertext(ByteString.copyFrom(s.read(input.in)))
                .setAdditionalAuthenticatedData(aad.bytes())
                .build();
        DecryptResponse response = s.keys().decrypt(request);
        if (!s.json() || output.toFile()) {
            s.writeSecret(output.out, response.getPlaintext().toByteArray());
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

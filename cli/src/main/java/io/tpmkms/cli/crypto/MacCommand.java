package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.MacSignRequest;
import io.tpmkms.proto.key.v1.MacSignResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "mac", description = "Compute a MAC (HMAC-SHA256) of up to 64 KiB with the key's primary version.")
public final class MacCommand extends KmsCommand {
    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of a mac key.")
    String key;

    @Mixin
    CryptoOptions.Input input;

    @Mixin
    CryptoOptions.Output output;

    @Override
    protected int run(Session s) throws Exception {
        MacSignResponse response = s.keys().macSign(MacSignRequest.newBuilder()
                .setKey(key)
                .setData(ByteString.copyFrom(input.read(s, spec)))
                .build());
        if (!s.json() || output.toFile()) {
            s.write(output.out, response.getMac().toByteArray());
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

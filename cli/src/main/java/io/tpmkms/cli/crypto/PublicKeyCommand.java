package io.tpmkms.cli.crypto;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.GetPublicKeyResponse;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "public-key", description = "Print a version's public key (SubjectPublicKeyInfo, PEM), e.g. for openssl.")
public final class PublicKeyCommand extends KmsCommand {
    // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of a sign or asymmetric-decrypt key.")
    String key;

    @Option(names = "--version", paramLabel = "N", description = "Version. Default: the primary.")
    int version;

    @Mixin
    CryptoOptions.Output output;

    @Override
    protected int run(Session s) throws Exception {
        GetPublicKeyResponse response = s.keys().getPublicKey(
                GetPublicKeyRequest.newBuilder().setKey(key).setVersion(version).build());
        if (!s.json() || output.toFile()) {
            String pem = response.getPem().endsWith("\n") ? response.getPem() : response.getPem() + "\n";
            s.write(output.out, pem.getBytes(StandardCharsets.US_ASCII));
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.SignRequest;
import io.tpmkms.proto.key.v1.SignResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "sign", description = {
        "Sign data (hashed by the service) or a precomputed digest (--digest).",
        "ECDSA signatures are DER; RSA signatures are the raw modulus-size value (as openssl writes them)."})
public final class SignCommand extends KmsCommand {
    // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of a sign key.")
    String key;

    @Option(names = "--version", paramLabel = "N", description = "Version to sign with. Default: the primary.")
    int version;

    @Option(names = "--digest", description = "The input is a digest of the algorithm's hash, not the data.")
    boolean digest;

    @Mixin
    CryptoOptions.Input input;

    @Mixin
    CryptoOptions.Output output;

    @Override
    protected int run(Session s) throws Exception {
        if (version < 0) {
            throw usage("--version must be a positive number");
        }
        ByteString in = ByteString.copyFrom(input.read(s, spec));
        SignRequest.Builder request = SignRequest.newBuilder().setKey(key).setVersion(version);
        if (digest) {
            request.setDigest(in);
        } else {
            request.setData(in);
        }
        SignResponse response = s.keys().sign(request.build());
        if (!s.json() || output.toFile()) {
            s.write(output.out, response.getSignature().toByteArray());
        }
        if (s.json()) {
            s.printJson(response);
        }
        return ExitCodes.OK;
    }
}

package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.VerifyRequest;
import io.tpmkms.proto.key.v1.VerifyResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "verify", description = {
        "Verify a signature with the service. Exit 0 if it is valid; exit 1 and 'signature INVALID' on stderr if not."})
public final class VerifyCommand extends KmsCommand {
    // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of a sign key.")
    String key;

    @Option(names = "--version", required = true, paramLabel = "N", description = "Version that signed.")
    int version;

    @Option(names = "--signature", required = true, paramLabel = "FILE", description = "The signature, as 'sign' wrote it.")
    Path signature;

    @Option(names = "--digest", description = "The input is a digest of the algorithm's hash, not the data.")
    boolean digest;

    @Mixin
    CryptoOptions.Input input;

    @Override
    protected int run(Session s) throws Exception {
        ByteString sig = ByteString.copyFrom(Files.readAllBytes(signature));
        ByteString in = ByteString.copyFrom(input.read(s, spec));
        VerifyRequest.Builder request = VerifyRequest.newBuilder().setKey(key).setVersion(version).setSignature(sig);
        if (digest) {
            request.setDigest(in);
        } else {
            request.setData(in);
        }
        VerifyResponse response = s.keys().verify(request.build());
        if (s.json()) {
            s.printJson(response);
        }
        if (!response.getValid()) {
            s.err().println("signature INVALID");
            return ExitCodes.FAILED;
        }
        if (!s.json()) {
            s.out().println("signature valid (" + key + " version " + Integer.toUnsignedString(response.getVersion()) + ")");
        }
        return ExitCodes.OK;
    }
}

package io.tpmkms.cli.crypto;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.MacVerifyRequest;
import io.tpmkms.proto.key.v1.MacVerifyResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "mac-verify", description = "Verify a MAC. Exit 0 if it is valid; exit 1 and 'MAC INVALID' on stderr if not.")
public final class MacVerifyCommand extends KmsCommand {
    // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of a mac key.")
    String key;

    @Option(names = "--version", required = true, paramLabel = "N", description = "Version that computed the MAC.")
    int version;

    @Option(names = "--mac", required = true, paramLabel = "FILE", description = "The MAC, as 'mac' wrote it.")
    Path mac;

    @Mixin
    CryptoOptions.Input input;

    @Override
    protected int run(Session s) throws Exception {
        MacVerifyResponse response = s.keys().macVerify(MacVerifyRequest.newBuilder()
                .setKey(key)
                .setVersion(version)
                .setMac(ByteString.copyFrom(Files.readAllBytes(mac)))
                .setData(ByteString.copyFrom(input.read(s, spec)))
                .build());
        if (s.json()) {
            s.printJson(response);
        }
        if (!response.getValid()) {
            s.err().println("MAC INVALID");
            return ExitCodes.FAILED;
        }
        if (!s.json()) {
            s.out().println("MAC valid (" + key + " version " + Integer.toUnsignedString(response.getVersion()) + ")");
        }
        return ExitCodes.OK;
    }
}

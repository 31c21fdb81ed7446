package io.tpmkms.cli.crypto;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.format.Vocabulary;
import io.tpmkms.proto.key.v1.GenerateRandomRequest;
import io.tpmkms.proto.key.v1.GenerateRandomResponse;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HexFormat;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "random", description = "Random bytes from the service's generator (the TPM's with --protection tpm).")
public final class RandomCommand extends KmsCommand {

    enum Format { hex, base64, raw }

    @Parameters(paramLabel = "N", description = "Number of bytes, 1 to 1024.")
    int length;

    @Option(names = "--format", paramLabel = "FORMAT", defaultValue = "hex",
            description = "hex (default), base64 or raw.")
    Format format;

    @Option(names = "--protection", paramLabel = "LEVEL",
            converter = Vocabulary.ProtectionConverter.class, completionCandidates = Vocabulary.ProtectionWords.class,
            description = "Source: ${COMPLETION-CANDIDATES}. Default: the service's.")
    ProtectionLevel protection;

    @Mixin
    CryptoOptions.Output output;

    @Override
    protected int run(Session s) throws Exception {
        if (length < 1 || length > 1024) {
            throw usage("N must be between 1 and 1024, got " + length);
        }
        GenerateRandomRequest.Builder request = GenerateRandomRequest.newBuilder().setLengthBytes(length);
        if (protection != null) {
            request.setProtectionLevel(protection);
        }
        GenerateRandomResponse response = s.keys().generateRandom(request.build());
        if (s.json()) {
            s.printJson(response);
            return ExitCodes.OK;
        }
        byte[] data = response.getData().toByteArray();
        byte[] shown = switch (format) {
            case hex -> (HexFormat.of().formatHex(data) + "\n").getBytes(StandardCharsets.US_ASCII);
            case base64 -> (Base64.getEncoder().encodeToString(data) + "\n").getBytes(StandardCharsets.US_ASCII);
            case raw -> data;
        };
        s.writeSecret(output.out, shown);
        return ExitCodes.OK;
    }
}

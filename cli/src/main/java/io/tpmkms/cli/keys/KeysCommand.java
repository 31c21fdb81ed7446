package io.tpmkms.cli.keys;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.format.DurationText;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.cli.format.Views;
import io.tpmkms.cli.format.Vocabulary;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.CreateKeyResponse;
import io.tpmkms.proto.key.v1.ExportPolicy;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.GetKeyResponse;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersionState;
import io.tpmkms.proto.key.v1.ListKeysRequest;
import io.tpmkms.proto.key.v1.ListKeysResponse;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import io.tpmkms.proto.key.v1.RotateKeyResponse;
import io.tpmkms.proto.key.v1.UpdateKeyRequest;
import io.tpmkms.proto.key.v1.UpdateKeyResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code tpmkms keys ...}: the key lifecycle. Version-level commands are in {@link VersionCommands}. */
@Command(name = "keys", description = "Create, list, inspect, update, rotate, import and export keys; manage their "
        + "versions.")
public final class KeysCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            KeysCommand.Create.class,
            KeysCommand.List.class,
            KeysCommand.Get.class,
            KeysCommand.Update.class,
            KeysCommand.Rotate.class,
            io.tpmkms.cli.imports.ImportKeyCommand.class,
            ExportKeyCommand.class,
            VersionCommands.Versions.class,
            VersionCommands.Version.class,
            VersionCommands.SetPrimary.class,
            VersionCommands.Disable.class,
            VersionCommands.Enable.class,
            VersionCommands.ScheduleDestroy.class,
            VersionCommands.Restore.class,
            VersionCommands.Revoke.class,
    };


    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    @Command(name = "create", description = {"Create a key and its first version (1, enabled, primary).",
            "With --import-only the key has no version until one is imported ('keys import'), and never generates one."})
    static final class Create extends KmsCommand {
        @Parameters(paramLabel = "NAMESPACE/NAME", description = "Name of the new key.")
        String key;

        @Option(names = "--purpose", required = true, paramLabel = "PURPOSE",
                converter = Vocabulary.PurposeConverter.class, completionCandidates = Vocabulary.PurposeWords.class,
                description = "One of: ${COMPLETION-CANDIDATES}.")
        KeyPurpose purpose;

        @Option(names = "--algorithm", paramLabel = "ALGORITHM",
                converter = Vocabulary.AlgorithmConverter.class, completionCandidates = Vocabulary.AlgorithmWords.class,
                description = "One of: ${COMPLETION-CANDIDATES}. Default: the purpose's default.")
        Algorithm algorithm;

        @Option(names = "--protection", paramLabel = "LEVEL",
                converter = Vocabulary.ProtectionConverter.class, completionCandidates = Vocabulary.ProtectionWords.class,
                description = "One of: ${COMPLETION-CANDIDATES}. Default: the service's (TPM when it has one).")
        ProtectionLevel protection;

        @Option(names = "--rotation-period", paramLabel = "DURATION", converter = DurationText.Converter.class,
                description = "Rotate automatically, e.g. 30d, 12h. Default: no scheduled rotation.")
        Duration rotationPeriod;

        @Option(names = "--next-rotation-time", paramLabel = "ISO8601", converter = TimeText.Converter.class,
                description = "First scheduled rotation. Default: now + rotation period.")
        Instant nextRotationTime;

        @Option(names = "--label", paramLabel = "KEY=VALUE", description = "A label; repeatable.")
        Map<String, String> labels = new LinkedHashMap<>();

        @Option(names = "--import-only", description = "No generated first version: versions come only from "
                + "'keys import'; 'keys rotate' is refused.")
        boolean importOnly;

        @Option(names = "--export-policy", paramLabel = "POLICY",
                converter = Vocabulary.ExportPolicyConverter.class,
                completionCandidates = Vocabulary.ExportPolicyWords.class,
                description = "One of: ${COMPLETION-CANDIDATES}; fixed for the key's life. duplicable (tpm keys): "
                        + "versions can leave the TPM, only as duplication blobs to an attested TPM storage key "
                        + "('keys export'). Default: the service's (non-exportable).")
        ExportPolicy exportPolicy;

        @Option(names = "--pcr-binding", paramLabel = "PCRS", split = ",",
                description = "TPM keys: bind every version to the values these SHA-256 PCRs hold now, e.g. 7,16 "
                        + "(1 to 8 of 0..23). The TPM refuses the key while any of them differs. Fixed for the key's life.")
        java.util.List<Integer> pcrBinding;

        @Option(names = "--pcr-values", paramLabel = "HEX", split = ",",
                description = "With --pcr-binding: bind to these SHA-256 values (64 hex digits each, in the order "
                        + "of --pcr-binding) instead of the current ones, e.g. the values after a planned firmware update.")
        java.util.List<String> pcrValues;

        @Override
        protected int run(Session s) throws Exception {
            int slash = key.indexOf('/');
            if (slash <= 0 || slash == key.length() - 1 || key.indexOf('/', slash + 1) >= 0) {
                throw usage("key name must be NAMESPACE/NAME, got '" + key + "'");
            }
            CreateKeyRequest.Builder request = CreateKeyRequest.newBuilder()
                    .setNamespace(key.substring(0, slash))
                    .setName(key.substring(slash + 1))
                    .setPurpose(purpose)
                    .setImportOnly(importOnly)
                    .putAllLabels(labels);
            if (algorithm != null) {
                request.setAlgorithm(algorithm);
            }
            if (protection != null) {
                request.setProtectionLevel(protection);
            }
            if (exportPolicy != null) {
                request.setExportPolicy(exportPolicy);
            }
            if (pcrValues != null && !pcrValues.isEmpty() && (pcrBinding == null || pcrBinding.isEmpty())) {
                throw usage("--pcr-values needs --pcr-binding");
            }
            if (pcrBinding != null && !pcrBinding.isEmpty()) {
                io.tpmkms.proto.key.v1.PlatformBinding.Builder binding =
                        io.tpmkms.proto.key.v1.PlatformBinding.newBuilder().addAllPcrs(pcrBinding);
                for (String hex : pcrValues == null ? java.util.List.<String>of() : pcrValues) {
                    try {
                        binding.addValues(com.google.protobuf.ByteString.copyFrom(java.util.HexFormat.of().parseHex(hex.trim())));
                    } catch (IllegalArgumentException e) {
                        throw usage("--pcr-values: '" + hex + "' is not hex");
                    }
                }
                request.setPlatformBinding(binding);
            }
            if (rotationPeriod != null) {
                request.setRotationPeriod(DurationText.toProto(rotationPeriod));
            }
            if (nextRotationTime != null) {
                request.setNextRotationTime(TimeText.toProto(nextRotationTime));
            }
            CreateKeyResponse response = s.keys().createKey(request.build());
            if (s.json()) {
                s.printJson(response);
            } else {
                Views.key(response.getKey(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", description = "List keys, ordered by namespace then name.")
    static final class List extends KmsCommand {
        @Option(names = "--namespace", paramLabel = "NAMESPACE", description = "Only this namespace.")
        String namespace;

        @Option(names = "--label", paramLabel = "KEY=VALUE", description = "Only keys with this label; repeatable, all must match.")
        Map<String, String> labels = new LinkedHashMap<>();

        @Option(names = "--purpose", paramLabel = "PURPOSE",
                converter = Vocabulary.PurposeConverter.class, completionCandidates = Vocabulary.PurposeWords.class,
                description = "Only keys with this purpose, one of: ${COMPLETION-CANDIDATES}.")
        KeyPurpose purpose;

        @Option(names = {"--protection-level", "--protection"}, paramLabel = "LEVEL",
                converter = Vocabulary.ProtectionConverter.class, completionCandidates = Vocabulary.ProtectionWords.class,
                description = "Only keys with this protection level, one of: ${COMPLETION-CANDIDATES}.")
        ProtectionLevel protection;

        @Option(names = "--primary-state", paramLabel = "STATE",
                converter = Vocabulary.StateConverter.class, completionCandidates = Vocabulary.StateWords.class,
                description = "Only keys whose primary version is in this state, one of: ${COMPLETION-CANDIDATES}.")
        KeyVersionState primaryState;

        @Option(names = "--any-version-state", paramLabel = "STATE",
                converter = Vocabulary.StateConverter.class, completionCandidates = Vocabulary.StateWords.class,
                description = "Only keys with at least one version in this state (e.g. destroy-scheduled: the keys with "
                        + "destructions due), one of: ${COMPLETION-CANDIDATES}.")
        KeyVersionState anyVersionState;

        @Option(names = "--name-contains", paramLabel = "TEXT",
                description = "Only keys whose name (not namespace) contains TEXT; case-sensitive.")
        String nameContains;

        @Option(names = "--page-size", paramLabel = "N", description = "Keys per page (service default 50, at most 1000).")
        int pageSize;

        @Option(names = "--page-token", paramLabel = "TOKEN", description = "Continue from a previous page.")
        String pageToken;

        @Option(names = "--all", description = "Follow the page tokens and list every key.")
        boolean all;

        @Override
        protected int run(Session s) throws Exception {
            if (pageSize < 0) {
                throw usage("--page-size must not be negative");
            }
            ListKeysRequest.Builder request = ListKeysRequest.newBuilder()
                    .putAllLabels(labels)
                    .setPageSize(pageSize);
            if (namespace != null) {
                request.setNamespace(namespace);
            }
            if (purpose != null) {
                request.setPurpose(purpose);
            }
            if (protection != null) {
                request.setProtectionLevel(protection);
            }
            if (primaryState != null) {
                request.setPrimaryState(primaryState);
            }
            if (anyVersionState != null) {
                request.setAnyVersionState(anyVersionState);
            }
            if (nameContains != null) {
                request.setNameContains(nameContains);
            }
            if (pageToken != null) {
                request.setPageToken(pageToken);
            }
            // --all: the same request, filters included, with each next token (a token only continues its listing).
            ListKeysResponse page = s.keys().listKeys(request.build());
            ListKeysResponse.Builder result = page.toBuilder();
            while (all && !page.getNextPageToken().isEmpty()) {
                page = s.keys().listKeys(request.setPageToken(page.getNextPageToken()).build());
                result.addAllKeys(page.getKeysList()).setNextPageToken(page.getNextPageToken());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                Views.keyTable(result.getKeysList(), s.out());
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more keys: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "get", description = "Show a key.")
    static final class Get extends KmsCommand {
        @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME")
        String key;

        @Override
        protected int run(Session s) throws Exception {
            GetKeyResponse response = s.keys().getKey(GetKeyRequest.newBuilder().setKey(key).build());
            if (s.json()) {
                s.printJson(response);
            } else {
                Views.key(response.getKey(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "update", description = {
            "Change a key's labels and rotation schedule. Only the fields given are changed.",
            "--label replaces the whole label set with the labels given."})
    static final class Update extends KmsCommand {
        @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME")
        String key;

        @Option(names = "--label", paramLabel = "KEY=VALUE", description = "New label set; repeatable.")
        Map<String, String> labels = new LinkedHashMap<>();

        @Option(names = "--clear-labels", description = "Remove all labels.")
        boolean clearLabels;

        @Option(names = "--rotation-period", paramLabel = "DURATION|none",
                description = "New rotation period, e.g. 30d; 'none' stops scheduled rotation.")
        String rotationPeriod;

        @Option(names = "--next-rotation-time", paramLabel = "ISO8601|none", description = "Next scheduled rotation.")
        String nextRotationTime;

        @Option(names = "--etag", paramLabel = "N",
                description = "Only update if the key's etag is still N (from 'keys get'); else exit 6.")
        long etag;

        @Override
        protected int run(Session s) throws Exception {
            UpdateKeyRequest.Builder request = UpdateKeyRequest.newBuilder().setKey(key).setEtag(etag);
            if (clearLabels && !labels.isEmpty()) {
                throw usage("--label and --clear-labels cannot be combined");
            }
            if (clearLabels || !labels.isEmpty()) {
                request.addUpdateMask("labels").putAllLabels(labels);
            }
            if (rotationPeriod != null) {
                request.addUpdateMask("rotation_period");
                if (!rotationPeriod.equalsIgnoreCase("none")) {
                    request.setRotationPeriod(DurationText.toProto(DurationText.parse(rotationPeriod)));
                }
            }
            if (nextRotationTime != null) {
                request.addUpdateMask("next_rotation_time");
                if (!nextRotationTime.equalsIgnoreCase("none")) {
                    request.setNextRotationTime(TimeText.toProto(TimeText.parse(nextRotationTime)));
                }
            }
            if (request.getUpdateMaskCount() == 0) {
                throw usage("nothing to update: give --label, --clear-labels, --rotation-period or --next-rotation-time");
            }
            UpdateKeyResponse response = s.keys().updateKey(request.build());
            if (s.json()) {
                s.printJson(response);
            } else {
                Views.key(response.getKey(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "rotate", description = "Create a new version of a key and make it primary.")
    static final class Rotate extends KmsCommand {
        @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME")
        String key;

        @Override
        protected int run(Session s) throws Exception {
            RotateKeyResponse response = s.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
            if (s.json()) {
                s.printJson(response);
            } else {
                Views.version(response.getVersion(), s.out());
            }
            return ExitCodes.OK;
        }
    }
}

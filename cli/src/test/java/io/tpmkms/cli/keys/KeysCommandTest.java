package io.tpmkms.cli.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Duration;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.key.v1.*;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class KeysCommandTest extends CliHarness {

    static final Timestamp T2030 = Timestamp.newBuilder().setSeconds(1_895_486_400L).build(); // 2030-01-24T12:00:00Z

    static Key key(String name, KeyPurpose purpose, Algorithm algorithm) {
        return Key.newBuilder()
                .setName(name).setNamespace(name.substring(0, name.indexOf('/')))
                .setPurpose(purpose).setAlgorithm(algorithm)
                .setProtectionLevel(ProtectionLevel.TPM)
                .setPrimaryVersion(3)
                .setNextRotationTime(T2030)
                .setRotationPeriod(Duration.newBuilder().setSeconds(30 * 86_400))
                .putLabels("team", "a").putLabels("env", "prod")
                .setEtag(17)
                .build();
    }

    @Test
    void create_withEveryOption_sendsTheRequestFields() {
        service.respond(CreateKeyResponse.newBuilder()
                .setKey(key("ns/orders", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM)).build());

        Result r = run("keys", "create", "ns/orders", "--purpose", "encrypt", "--algorithm", "aes-256-gcm",
                "--protection", "software", "--rotation-period", "30d", "--label", "env=prod", "--label", "team=a");

        assertEquals(0, r.exitCode(), r::toString);
        CreateKeyRequest req = service.only(CreateKeyRequest.class);
        assertEquals("ns", req.getNamespace());
        assertEquals("orders", req.getName());
        assertEquals(KeyPurpose.ENCRYPT_DECRYPT, req.getPurpose());
        assertEquals(Algorithm.AES_256_GCM, req.getAlgorithm());
        assertEquals(ProtectionLevel.SOFTWARE, req.getProtectionLevel());
        assertEquals(2_592_000L, req.getRotationPeriod().getSeconds());
        assertEquals(Map.of("env", "prod", "team", "a"), req.getLabelsMap());
        assertFalse(req.hasNextRotationTime());
        assertTrue(r.stdout().contains("ns/orders"), r::toString);
        assertTrue(r.stdout().matches("(?s).*purpose:\\s+encrypt\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*rotation period:\\s+30d\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*etag:\\s+17\\n.*"), r::toString);
    }

    @Test
    void create_withoutOptionalOptions_leavesThemUnset() {
        Result r = run("keys", "create", "ns/signer", "--purpose", "sign");

        assertEquals(0, r.exitCode(), r::toString);
        CreateKeyRequest req = service.only(CreateKeyRequest.class);
        assertEquals(KeyPurpose.ASYMMETRIC_SIGN, req.getPurpose());
        assertEquals(Algorithm.ALGORITHM_UNSPECIFIED, req.getAlgorithm());
        assertEquals(ProtectionLevel.PROTECTION_LEVEL_UNSPECIFIED, req.getProtectionLevel());
        assertFalse(req.hasRotationPeriod());
        assertTrue(req.getLabelsMap().isEmpty());
    }

    @Test
    void create_nameWithoutNamespace_isUsageErrorAndSendsNothing() {
        Result r = run("keys", "create", "orders", "--purpose", "encrypt");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("NAMESPACE/NAME"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void create_unknownAlgorithm_isUsageErrorListingTheChoices() {
        Result r = run("keys", "create", "ns/k", "--purpose", "encrypt", "--algorithm", "aes-128-cbc");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("unknown algorithm 'aes-128-cbc'"), r::toString);
        assertTrue(r.stderr().contains("rsa-oaep-3072-sha256"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void create_badRotationPeriod_isUsageError() {
        Result r = run("keys", "create", "ns/k", "--purpose", "encrypt", "--rotation-period", "3 weeks");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("not a duration"), r::toString);
    }

    @Test
    void list_printsAlignedTableWithLowerCaseEnums() {
        service.respond(ListKeysResponse.newBuilder()
                .addKeys(key("ns/orders", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM))
                .addKeys(key("ns/release-signing", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.RSA_SIGN_PSS_3072_SHA256)
                        .toBuilder().clearLabels().clearNextRotationTime().setProtectionLevel(ProtectionLevel.SOFTWARE))
                .build());

        Result r = run("keys", "list");

        assertEquals(0, r.exitCode(), r::toString);
        List<String> lines = r.stdout().lines().toList();
        assertEquals(3, lines.size(), r::toString);
        assertTrue(lines.get(0).matches("NAME +PURPOSE +ALGORITHM +PROTECTION +PRIMARY +NEXT ROTATION +LABELS"), r::toString);
        assertTrue(lines.get(1).matches(
                "ns/orders +encrypt +aes-256-gcm +tpm +3 +2030-01-24T12:00:00Z +env=prod,team=a"), r::toString);
        assertTrue(lines.get(2).matches(
                "ns/release-signing +sign +rsa-pss-3072-sha256 +software +3 +- +-"), r::toString);
        // aligned: each column starts two spaces after the longest cell before it, on every line
        assertEquals("ns/release-signing".length() + 2, lines.get(0).indexOf("PURPOSE"));
        assertEquals(lines.get(0).indexOf("PURPOSE"), lines.get(1).indexOf("encrypt"));
        assertEquals(lines.get(0).indexOf("LABELS"), lines.get(1).indexOf("env=prod"));
    }

    @Test
    void list_filters_areSentAsRequestFields() {
        Result r = run("keys", "list", "--namespace", "payments", "--label", "env=prod", "--page-size", "7");

        assertEquals(0, r.exitCode(), r::toString);
        ListKeysRequest req = service.only(ListKeysRequest.class);
        assertEquals("payments", req.getNamespace());
        assertEquals(Map.of("env", "prod"), req.getLabelsMap());
        assertEquals(7, req.getPageSize());
        assertEquals("", req.getPageToken());
    }

    @Test
    void list_withoutAll_showsOnePageAndHowToContinue() {
        service.respond(ListKeysResponse.newBuilder()
                .addKeys(key("a/one", KeyPurpose.MAC, Algorithm.HMAC_SHA256)).setNextPageToken("tok-2").build());

        Result r = run("keys", "list");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, service.requests(ListKeysRequest.class).size());
        assertTrue(r.stderr().contains("--page-token tok-2"), r::toString);
    }

    @Test
    void list_all_followsPageTokensUntilTheLastPage() {
        service.respond(
                ListKeysResponse.newBuilder().addKeys(key("a/one", KeyPurpose.MAC, Algorithm.HMAC_SHA256))
                        .setNextPageToken("tok-2").build(),
                ListKeysResponse.newBuilder().addKeys(key("b/two", KeyPurpose.MAC, Algorithm.HMAC_SHA256))
                        .setNextPageToken("tok-3").build(),
                ListKeysResponse.newBuilder().addKeys(key("c/three", KeyPurpose.MAC, Algorithm.HMAC_SHA256)).build());

        Result r = run("keys", "list", "--all", "--namespace", "x");

        assertEquals(0, r.exitCode(), r::toString);
        List<ListKeysRequest> reqs = service.requests(ListKeysRequest.class);
        assertEquals(List.of("", "tok-2", "tok-3"), reqs.stream().map(ListKeysRequest::getPageToken).toList());
        assertTrue(reqs.stream().allMatch(q -> q.getNamespace().equals("x")));
        assertEquals(4, r.stdout().lines().count(), r::toString);
        assertTrue(r.stdout().contains("c/three"), r::toString);
        assertEquals("", r.stderr());
    }

    @Test
    void list_serverSideFilters_areSentAsRequestFields() {
        Result r = run("keys", "list", "--purpose", "SIGN", "--protection-level", "Tpm",
                "--primary-state", "destroy-scheduled", "--name-contains", "Ord", "--any-version-state", "Compromised");

        assertEquals(0, r.exitCode(), r::toString);
        ListKeysRequest req = service.only(ListKeysRequest.class);
        assertEquals(KeyPurpose.ASYMMETRIC_SIGN, req.getPurpose());
        assertEquals(ProtectionLevel.TPM, req.getProtectionLevel());
        assertEquals(KeyVersionState.DESTROY_SCHEDULED, req.getPrimaryState());
        assertEquals(KeyVersionState.COMPROMISED, req.getAnyVersionState());
        assertEquals("Ord", req.getNameContains());
        assertEquals("", req.getNamespace());
    }

    @Test
    void list_protectionAlone_leavesTheOtherFiltersUnset() {
        Result r = run("keys", "list", "--protection", "software");

        assertEquals(0, r.exitCode(), r::toString);
        ListKeysRequest req = service.only(ListKeysRequest.class);
        assertEquals(ProtectionLevel.SOFTWARE, req.getProtectionLevel());
        assertEquals(KeyPurpose.KEY_PURPOSE_UNSPECIFIED, req.getPurpose());
        assertEquals(KeyVersionState.KEY_VERSION_STATE_UNSPECIFIED, req.getPrimaryState());
        assertEquals(KeyVersionState.KEY_VERSION_STATE_UNSPECIFIED, req.getAnyVersionState());
        assertEquals("", req.getNameContains());
    }

    static Stream<Arguments> unknownListFilterValues() {
        return Stream.of(
                Arguments.of("--purpose", "encrypt_decrypt", "unknown purpose 'encrypt_decrypt'",
                        List.of("encrypt", "sign", "asymmetric-decrypt", "mac")),
                Arguments.of("--protection-level", "hsm", "unknown protection level 'hsm'",
                        List.of("software", "tpm")),
                Arguments.of("--primary-state", "active", "unknown key version state 'active'",
                        List.of("pending-import", "enabled", "disabled", "destroy-scheduled", "destroyed",
                                "compromised")),
                Arguments.of("--any-version-state", "scheduled", "unknown key version state 'scheduled'",
                        List.of("pending-import", "enabled", "disabled", "destroy-scheduled", "destroyed",
                                "compromised")));
    }

    @ParameterizedTest
    @MethodSource("unknownListFilterValues")
    void list_unknownFilterValue_isUsageErrorListingTheChoicesAndSendsNothing(
            String option, String value, String message, List<String> accepted) {
        Result r = run("keys", "list", option, value);

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains(message), r::toString);
        assertTrue(r.stderr().contains("(expected one of: " + String.join(", ", accepted) + ")"), r::toString);
        assertTrue(r.stderr().contains("Try 'tpmkms keys list --help'"), r::toString);
        assertTrue(service.requests().isEmpty(), () -> service.requests().toString());
    }

    @Test
    void list_all_keepsTheFiltersOnEveryPage() {
        service.respond(
                ListKeysResponse.newBuilder().addKeys(key("a/order-1", KeyPurpose.MAC, Algorithm.HMAC_SHA256))
                        .setNextPageToken("tok-2").build(),
                ListKeysResponse.newBuilder().addKeys(key("b/order-2", KeyPurpose.MAC, Algorithm.HMAC_SHA256)).build());

        Result r = run("keys", "list", "--all", "--purpose", "mac", "--protection-level", "software",
                "--primary-state", "enabled", "--name-contains", "order", "--label", "env=prod", "--page-size", "1",
                "--any-version-state", "destroy-scheduled");

        assertEquals(0, r.exitCode(), r::toString);
        List<ListKeysRequest> reqs = service.requests(ListKeysRequest.class);
        assertEquals(List.of("", "tok-2"), reqs.stream().map(ListKeysRequest::getPageToken).toList());
        for (ListKeysRequest q : reqs) {
            assertEquals(KeyPurpose.MAC, q.getPurpose(), q::toString);
            assertEquals(ProtectionLevel.SOFTWARE, q.getProtectionLevel(), q::toString);
            assertEquals(KeyVersionState.ENABLED, q.getPrimaryState(), q::toString);
            assertEquals(KeyVersionState.DESTROY_SCHEDULED, q.getAnyVersionState(), q::toString);
            assertEquals("order", q.getNameContains(), q::toString);
            assertEquals(Map.of("env", "prod"), q.getLabelsMap(), q::toString);
            assertEquals(1, q.getPageSize(), q::toString);
        }
        assertTrue(r.stdout().contains("a/order-1") && r.stdout().contains("b/order-2"), r::toString);
    }

    @Test
    void list_pageToken_isSentWithTheFilters() {
        Result r = run("keys", "list", "--page-token", "tok-9", "--purpose", "encrypt", "--name-contains", "x");

        assertEquals(0, r.exitCode(), r::toString);
        ListKeysRequest req = service.only(ListKeysRequest.class);
        assertEquals("tok-9", req.getPageToken());
        assertEquals(KeyPurpose.ENCRYPT_DECRYPT, req.getPurpose());
        assertEquals("x", req.getNameContains());
    }

    @Test
    void list_json_isTheResponseInProtobufJson() throws Exception {
        ListKeysResponse canned = ListKeysResponse.newBuilder()
                .addKeys(key("ns/orders", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM)).build();
        service.respond(canned);

        Result r = run("keys", "list", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        ListKeysResponse.Builder parsed = ListKeysResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), parsed);
        assertEquals(canned, parsed.build());
        assertTrue(r.stdout().contains("\"algorithm\": \"AES_256_GCM\""), r::toString);
    }

    @Test
    void get_json_canBeGivenBeforeTheSubcommand() {
        service.respond(GetKeyResponse.newBuilder()
                .setKey(key("ns/orders", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM)).build());

        Result r = run("--json", "keys", "get", "ns/orders");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("ns/orders", service.only(GetKeyRequest.class).getKey());
        assertTrue(r.stdout().startsWith("{"), r::toString);
        assertTrue(r.stdout().contains("\"etag\": \"17\""), r::toString);
    }

    @Test
    void update_labelsAndRotationPeriod_buildTheUpdateMask() {
        Result r = run("keys", "update", "ns/orders", "--label", "env=staging", "--label", "owner=ops",
                "--rotation-period", "12h", "--etag", "17");

        assertEquals(0, r.exitCode(), r::toString);
        UpdateKeyRequest req = service.only(UpdateKeyRequest.class);
        assertEquals("ns/orders", req.getKey());
        assertEquals(List.of("labels", "rotation_period"), req.getUpdateMaskList());
        assertEquals(Map.of("env", "staging", "owner", "ops"), req.getLabelsMap());
        assertEquals(43_200L, req.getRotationPeriod().getSeconds());
        assertFalse(req.hasNextRotationTime());
        assertEquals(17L, req.getEtag());
    }

    @Test
    void update_rotationPeriodNone_namesTheFieldAndLeavesItUnset() {
        Result r = run("keys", "update", "ns/orders", "--rotation-period", "none");

        assertEquals(0, r.exitCode(), r::toString);
        UpdateKeyRequest req = service.only(UpdateKeyRequest.class);
        assertEquals(List.of("rotation_period"), req.getUpdateMaskList());
        assertFalse(req.hasRotationPeriod());
        assertEquals(0L, req.getEtag());
    }

    @Test
    void update_clearLabels_sendsLabelsMaskWithNoLabels() {
        Result r = run("keys", "update", "ns/orders", "--clear-labels", "--next-rotation-time", "2030-01-24T12:00:00Z");

        assertEquals(0, r.exitCode(), r::toString);
        UpdateKeyRequest req = service.only(UpdateKeyRequest.class);
        assertEquals(List.of("labels", "next_rotation_time"), req.getUpdateMaskList());
        assertTrue(req.getLabelsMap().isEmpty());
        assertEquals(T2030, req.getNextRotationTime());
    }

    @Test
    void update_withNothingToChange_isUsageErrorAndSendsNothing() {
        Result r = run("keys", "update", "ns/orders", "--etag", "3");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("nothing to update"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void update_labelWithClearLabels_isUsageError() {
        Result r = run("keys", "update", "ns/orders", "--label", "a=b", "--clear-labels");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void rotate_printsTheNewPrimaryVersion() {
        service.respond(RotateKeyResponse.newBuilder()
                .setVersion(KeyVersion.newBuilder().setKey("ns/orders").setVersion(4).setPrimary(true)
                        .setState(KeyVersionState.ENABLED).setAlgorithm(Algorithm.AES_256_GCM))
                .build());

        Result r = run("keys", "rotate", "ns/orders");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("ns/orders", service.only(RotateKeyRequest.class).getKey());
        assertTrue(r.stdout().matches("(?s).*version:\\s+4\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*state:\\s+enabled\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*primary:\\s+yes\\n.*"), r::toString);
    }

    @Test
    void versions_tableShowsStatesPrimaryAndDestroyTime_acrossPages() {
        service.respond(
                ListKeyVersionsResponse.newBuilder()
                        .addVersions(KeyVersion.newBuilder().setVersion(1).setState(KeyVersionState.DESTROY_SCHEDULED)
                                .setDestroyTime(T2030))
                        .setNextPageToken("p2").build(),
                ListKeyVersionsResponse.newBuilder()
                        .addVersions(KeyVersion.newBuilder().setVersion(2).setState(KeyVersionState.ENABLED)
                                .setPrimary(true).setCreateTime(T2030).setExportPolicy(ExportPolicy.DUPLICABLE)
                                .setDuplicated(true).setImported(true)
                                .setPolicyDigest(com.google.protobuf.ByteString.copyFrom(DIGEST)))
                        .build());

        Result r = run("keys", "versions", "ns/orders", "--include-destroyed");

        assertEquals(0, r.exitCode(), r::toString);
        List<ListKeyVersionsRequest> reqs = service.requests(ListKeyVersionsRequest.class);
        assertEquals(2, reqs.size());
        assertTrue(reqs.get(0).getIncludeDestroyed());
        assertEquals("p2", reqs.get(1).getPageToken());
        List<String> lines = r.stdout().lines().toList();
        assertTrue(lines.get(0).matches(
                "VERSION +STATE +PRIMARY +CREATED +DESTROY TIME +EXPORT +ORIGIN +POLICY DIGEST"), r::toString);
        assertTrue(lines.get(1).matches("1 +destroy-scheduled +- +2030-01-24T12:00:00Z +- +generated +-"), r::toString);
        assertTrue(lines.get(2).matches("2 +enabled +yes +2030-01-24T12:00:00Z +- +duplicable +duplicated "
                + "+0001020304050607\\.\\.\\."), r::toString);
    }

    static final byte[] DIGEST = new byte[32];

    static {
        for (int i = 0; i < DIGEST.length; i++) {
            DIGEST[i] = (byte) i;
        }
    }

    @Test
    void version_showsExportPolicyPolicyDigestAndDuplicatedOrigin() {
        service.respond(GetKeyVersionResponse.newBuilder().setVersion(KeyVersion.newBuilder().setKey("ns/orders")
                .setVersion(2).setState(KeyVersionState.ENABLED).setExportPolicy(ExportPolicy.DUPLICABLE)
                .setPolicyDigest(com.google.protobuf.ByteString.copyFrom(DIGEST)).setImported(true).setDuplicated(true)
                .setImportJob("ns/dup1").setImportTime(T2030)).build());

        Result r = run("keys", "version", "ns/orders", "2");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().matches("(?s).*origin:\\s+imported by duplication \\(TPM2_Import of a duplication blob\\) "
                + "with import job ns/dup1 at 2030-01-24T12:00:00Z\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*export policy:\\s+duplicable\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*policy digest:\\s+" + java.util.HexFormat.of().formatHex(DIGEST) + "\\n.*"),
                r::toString);
    }

    @Test
    void version_ofAGeneratedNonExportableKey_saysSo() {
        service.respond(GetKeyVersionResponse.newBuilder().setVersion(KeyVersion.newBuilder().setKey("ns/orders")
                .setVersion(1).setExportPolicy(ExportPolicy.NON_EXPORTABLE)).build());

        Result r = run("keys", "version", "ns/orders", "1");

        assertTrue(r.stdout().matches("(?s).*origin:\\s+generated\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*export policy:\\s+non-exportable\\n.*"), r::toString);
        assertTrue(r.stdout().matches("(?s).*policy digest:\\s+-\\n.*"), r::toString);
    }

    @Test
    void create_exportPolicy_isSent_andTheKeyShowsIt() {
        service.respond(CreateKeyResponse.newBuilder().setKey(key("ns/signer", KeyPurpose.ASYMMETRIC_SIGN,
                Algorithm.EC_SIGN_P256_SHA256).toBuilder().setExportPolicy(ExportPolicy.DUPLICABLE)).build());

        Result r = run("keys", "create", "ns/signer", "--purpose", "sign", "--protection", "tpm",
                "--export-policy", "duplicable");
        Result nonExportable = run("keys", "create", "ns/k2", "--purpose", "sign", "--export-policy", "NON-EXPORTABLE");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(ExportPolicy.DUPLICABLE, service.requests(CreateKeyRequest.class).get(0).getExportPolicy());
        assertTrue(r.stdout().matches("(?s).*export policy:\\s+duplicable\\n.*"), r::toString);
        assertEquals(0, nonExportable.exitCode(), nonExportable::toString);
        assertEquals(ExportPolicy.NON_EXPORTABLE, service.requests(CreateKeyRequest.class).get(1).getExportPolicy());
    }

    @Test
    void create_withoutExportPolicy_leavesItToTheService_andAnUnknownOneIsAUsageError() {
        Result r = run("keys", "create", "ns/k", "--purpose", "sign");
        Result bad = run("keys", "create", "ns/k", "--purpose", "sign", "--export-policy", "exportable");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(ExportPolicy.EXPORT_POLICY_UNSPECIFIED, service.only(CreateKeyRequest.class).getExportPolicy());
        assertEquals(ExitCodes.USAGE, bad.exitCode(), bad::toString);
        assertTrue(bad.stderr().contains("unknown export policy 'exportable' (expected one of: non-exportable, "
                + "duplicable)"), bad::toString);
        assertEquals(1, service.requests().size(), "the bad one sent nothing");
    }

    @Test
    void create_pcrBinding_isSent_withValues_andTheKeyShowsIt() {
        String v16 = "ab".repeat(32);
        String v7 = "0c".repeat(32);
        service.respond(CreateKeyResponse.newBuilder().setKey(key("ns/bound", KeyPurpose.ASYMMETRIC_SIGN,
                Algorithm.EC_SIGN_P256_SHA256).toBuilder().setPlatformBinding(io.tpmkms.proto.key.v1.PlatformBinding
                .newBuilder().addPcrs(7).addPcrs(16)
                .addValues(com.google.protobuf.ByteString.fromHex(v7)).addValues(com.google.protobuf.ByteString.fromHex(v16))))
                .build());

        Result r = run("keys", "create", "ns/bound", "--purpose", "sign", "--pcr-binding", "16,7",
                "--pcr-values", v16 + "," + v7);
        Result noBinding = run("keys", "create", "ns/k2", "--purpose", "sign", "--pcr-values", v16);
        Result notHex = run("keys", "create", "ns/k3", "--purpose", "sign", "--pcr-binding", "16", "--pcr-values", "zz");

        assertEquals(0, r.exitCode(), r::toString);
        io.tpmkms.proto.key.v1.PlatformBinding sent = service.requests(CreateKeyRequest.class).get(0).getPlatformBinding();
        assertEquals(java.util.List.of(16, 7), sent.getPcrsList(), "as given: the service sorts");
        assertEquals(v16, java.util.HexFormat.of().formatHex(sent.getValues(0).toByteArray()));
        assertTrue(r.stdout().contains("platform binding:  sha256:7=" + v7 + ", 16=" + v16)
                || r.stdout().matches("(?s).*platform binding:\\s+sha256:7=" + v7 + ", 16=" + v16 + "\\n.*"), r::toString);
        assertEquals(ExitCodes.USAGE, noBinding.exitCode(), noBinding::toString);
        assertTrue(noBinding.stderr().contains("--pcr-values needs --pcr-binding"), noBinding::toString);
        assertEquals(ExitCodes.USAGE, notHex.exitCode(), notHex::toString);
        assertEquals(1, service.requests().size(), "the bad ones sent nothing");
    }

    static Stream<Arguments> versionCommands() {
        return Stream.of(
                Arguments.of("version", GetKeyVersionRequest.class,
                        (Function<Message, String>) m -> ((GetKeyVersionRequest) m).getKey() + "#" + ((GetKeyVersionRequest) m).getVersion()),
                Arguments.of("set-primary", SetPrimaryVersionRequest.class,
                        (Function<Message, String>) m -> ((SetPrimaryVersionRequest) m).getKey() + "#" + ((SetPrimaryVersionRequest) m).getVersion()),
                Arguments.of("disable", DisableKeyVersionRequest.class,
                        (Function<Message, String>) m -> ((DisableKeyVersionRequest) m).getKey() + "#" + ((DisableKeyVersionRequest) m).getVersion()),
                Arguments.of("enable", EnableKeyVersionRequest.class,
                        (Function<Message, String>) m -> ((EnableKeyVersionRequest) m).getKey() + "#" + ((EnableKeyVersionRequest) m).getVersion()),
                Arguments.of("schedule-destroy", ScheduleKeyVersionDestructionRequest.class,
                        (Function<Message, String>) m -> ((ScheduleKeyVersionDestructionRequest) m).getKey() + "#" + ((ScheduleKeyVersionDestructionRequest) m).getVersion()),
                Arguments.of("restore", RestoreKeyVersionRequest.class,
                        (Function<Message, String>) m -> ((RestoreKeyVersionRequest) m).getKey() + "#" + ((RestoreKeyVersionRequest) m).getVersion()),
                Arguments.of("revoke", RevokeKeyVersionRequest.class,
                        (Function<Message, String>) m -> ((RevokeKeyVersionRequest) m).getKey() + "#" + ((RevokeKeyVersionRequest) m).getVersion()));
    }

    @ParameterizedTest(name = "keys {0}")
    @MethodSource("versionCommands")
    void versionCommand_sendsKeyAndVersionToItsRpc(String command, Class<? extends Message> type,
            Function<Message, String> address) {
        Result r = run("keys", command, "ns/orders", "2");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, service.requests().size(), () -> service.requests().toString());
        assertEquals("ns/orders#2", address.apply(service.only(type)));
    }

    @Test
    void versionCommand_zeroVersion_isUsageError() {
        Result r = run("keys", "disable", "ns/orders", "0");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void scheduleDestroy_delay_isSentAsDuration() {
        service.respond(ScheduleKeyVersionDestructionResponse.newBuilder()
                .setVersion(KeyVersion.newBuilder().setKey("ns/orders").setVersion(2)
                        .setState(KeyVersionState.DESTROY_SCHEDULED).setDestroyTime(T2030)).build());

        Result r = run("keys", "schedule-destroy", "ns/orders", "2", "--delay", "7d");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(604_800L, service.only(ScheduleKeyVersionDestructionRequest.class).getDelay().getSeconds());
        assertTrue(r.stdout().matches("(?s).*state:\\s+destroy-scheduled\\n.*destroy time:\\s+2030-01-24T12:00:00Z\\n.*"),
                r::toString);
    }

    @Test
    void scheduleDestroy_withoutDelay_leavesItToTheService() {
        run("keys", "schedule-destroy", "ns/orders", "2");

        assertFalse(service.only(ScheduleKeyVersionDestructionRequest.class).hasDelay());
    }

    @Test
    void revoke_ofThePrimary_reportsTheNewPrimary() {
        service.respond(RevokeKeyVersionResponse.newBuilder()
                .setVersion(KeyVersion.newBuilder().setKey("ns/orders").setVersion(3).setState(KeyVersionState.COMPROMISED))
                .setKey(key("ns/orders", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM).toBuilder().setPrimaryVersion(4))
                .build());

        Result r = run("keys", "revoke", "ns/orders", "3");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().matches("(?s).*state:\\s+compromised\\n.*"), r::toString);
        assertTrue(r.stdout().contains("primary version of ns/orders is now 4"), r::toString);
    }
}

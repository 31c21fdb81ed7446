package io.tpmkms.cli.nodes;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.CredentialActivation;
import io.tpmkms.protection.tpm.attest.EkTemplates;
import io.tpmkms.protection.tpm.attest.EventLog;
import io.tpmkms.protection.tpm.attest.QuoteVerifier;
import io.tpmkms.protection.tpm.attest.TpmAttestation;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.proto.key.v1.ActivateNodeRequest;
import io.tpmkms.proto.key.v1.ActivateNodeResponse;
import io.tpmkms.proto.key.v1.AttestNodeRequest;
import io.tpmkms.proto.key.v1.AttestNodeResponse;
import io.tpmkms.proto.key.v1.EnrollNodeRequest;
import io.tpmkms.proto.key.v1.EnrollNodeResponse;
import io.tpmkms.proto.key.v1.GetAttestationChallengeRequest;
import io.tpmkms.proto.key.v1.GetAttestationChallengeResponse;
import io.tpmkms.proto.key.v1.GetNodeRequest;
import io.tpmkms.proto.key.v1.GetNodeResponse;
import io.tpmkms.proto.key.v1.ListNodesResponse;
import io.tpmkms.proto.key.v1.Node;
import io.tpmkms.proto.key.v1.NodeState;
import io.tpmkms.proto.key.v1.ReleaseKeyRequest;
import io.tpmkms.proto.key.v1.ReleaseKeyResponse;
import io.tpmkms.proto.key.v1.RevokeNodeRequest;
import io.tpmkms.proto.key.v1.RevokeNodeResponse;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tpmkms nodes} and {@code tpmkms agent} (ADR 0038). The agent runs against a real node TPM (swtpm
 * with an EK certificate from swtpm_localca); the fake key service computes what the real one would:
 * credentials for the EK and AK the agent sent (only that TPM can activate them), quotes verified with
 * QuoteVerifier against the replay of the event log sent. Skipped when swtpm is not installed.
 */
class NodesCommandTest extends CliHarness {

    static final byte[] DATA_KEY = HexFormat.of().parseHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    static final byte[] WRAPPED = "wrapped data key from the service".getBytes(StandardCharsets.US_ASCII);
    static final SecureRandom RANDOM = new SecureRandom();

    private Swtpm swtpm;
    private String tpm;
    /** The node TPM's RSA EK and node AK, as the test reads them (the connection released before the CLI runs). */
    private byte[] ekPublic;
    private byte[] akPublic;
    private byte[] akName;

    @TempDir
    Path dir;

    @BeforeAll
    void startNodeTpm() throws Exception {
        for (String exe : new String[] {"swtpm", "swtpm_setup", "swtpm_localca"}) {
            Assumptions.assumeTrue(onPath(exe), exe + " is not installed (apt-get install swtpm swtpm-tools)");
        }
        swtpm = Swtpm.startWithEkCertificate();
        tpm = "unix:" + swtpm.socket();
        try (TpmConnection c = TpmConnection.open(swtpm.config())) {
            TpmAttestation node = TpmAttestation.forNode(c);
            ekPublic = node.endorsementKey(TpmAttestation.EkType.RSA_2048).tpmtPublic();
            TpmAttestation.AttestationKey ak = node.attestationKey();
            akPublic = ak.tpmtPublic();
            akName = ak.name();
        }
    }

    @AfterAll
    void stopNodeTpm() throws Exception {
        if (swtpm != null) {
            swtpm.close();
        }
    }

    @BeforeEach
    void clearHooks() {
        service.enrollNode = null;
        service.activateNode = null;
        service.challenge = null;
        service.attestNode = null;
        service.releaseKey = null;
    }

    private static boolean onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, exe))) {
                return true;
            }
        }
        return false;
    }

    private static byte[] random32() {
        byte[] b = new byte[32];
        RANDOM.nextBytes(b);
        return b;
    }

    private static Node node(String name, NodeState state) {
        return Node.newBuilder().setName(name).setState(state).setEkCertificateSubject("CN=ek-subject")
                .setEkCertificateIssuer("CN=swtpm-localca").setTpmManufacturer("id:00001014").setTpmModel("swtpm")
                .setTpmVersion("id:20191023").setAkName(ByteString.copyFrom(new byte[] {0, 0x0b, (byte) 0xab}))
                .addPcrs(16).setCreateTime(Timestamp.newBuilder().setSeconds(1_900_000_000)).build();
    }

    // ---- enroll ---------------------------------------------------------------------------------

    @Test
    void enroll_sendsTheCertifiedEkAndTheNodeAk_answersTheCredentialWithTheTpm_endsEnrolled() throws Exception {
        byte[][] secret = new byte[1][];
        service.enrollNode = r -> {
            secret[0] = random32();
            byte[] credential = CredentialActivation.make(r.getEkPublic().toByteArray(),
                    Templates.name(r.getAkPublic().toByteArray()), secret[0]).toTpm2ToolsFile();
            return EnrollNodeResponse.newBuilder().setNode(node(r.getName(), NodeState.PENDING_ACTIVATION))
                    .setCredential(ByteString.copyFrom(credential)).build();
        };
        service.activateNode = r -> ActivateNodeResponse.newBuilder().setNode(node(r.getName(),
                java.security.MessageDigest.isEqual(secret[0], r.getSecret().toByteArray()) ? NodeState.ENROLLED
                        : NodeState.PENDING_ACTIVATION)).build();

        // --tpm after the subcommand works too (an inherited option)
        Result r = run("agent", "enroll", "node-1", "--pcrs", "16", "--tpm", tpm);

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("state:             ENROLLED"), r::toString);
        EnrollNodeRequest sent = service.only(EnrollNodeRequest.class);
        assertEquals("node-1", sent.getName());
        assertEquals(List.of(16), sent.getPcrsList());
        assertArrayEquals(ekPublic, sent.getEkPublic().toByteArray(), "the TPM's RSA EK");
        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(sent.getEkCertificate().toByteArray()));
        assertArrayEquals(EkTemplates.forCertifiedKey(cert.getPublicKey()), sent.getEkPublic().toByteArray(),
                "the certificate from NV certifies the EK sent");
        assertArrayEquals(akPublic, sent.getAkPublic().toByteArray(), "the node AK");
        ActivateNodeRequest activated = service.only(ActivateNodeRequest.class);
        assertEquals("node-1", activated.getName());
        assertArrayEquals(secret[0], activated.getSecret().toByteArray(), "the secret in the credential, from the TPM");
    }

    @Test
    void enroll_withGoldenValues_sendsThemInPcrOrder() throws Exception {
        byte[] g16 = random32();
        byte[] g23 = random32();
        byte[] secret = random32();
        service.enrollNode = r -> EnrollNodeResponse.newBuilder().setNode(node(r.getName(), NodeState.PENDING_ACTIVATION))
                .setCredential(ByteString.copyFrom(CredentialActivation.make(r.getEkPublic().toByteArray(),
                        Templates.name(r.getAkPublic().toByteArray()), secret).toTpm2ToolsFile())).build();
        service.activateNode = r -> ActivateNodeResponse.newBuilder().setNode(node(r.getName(), NodeState.ENROLLED)).build();

        Result r = run("--json", "agent", "--tpm", tpm, "enroll", "node-2", "--pcrs", "16,23", "--golden-values",
                HexFormat.of().formatHex(g16) + "," + HexFormat.of().formatHex(g23));

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        assertEquals("ENROLLED", JsonParser.parseString(r.stdout()).getAsJsonObject().getAsJsonObject("node")
                .get("state").getAsString());
        EnrollNodeRequest sent = service.only(EnrollNodeRequest.class);
        assertEquals(List.of(16, 23), sent.getPcrsList());
        assertArrayEquals(g16, sent.getGoldenValues(0).toByteArray());
        assertArrayEquals(g23, sent.getGoldenValues(1).toByteArray());
        assertArrayEquals(secret, service.only(ActivateNodeRequest.class).getSecret().toByteArray());
    }

    @Test
    void enroll_goldenValuesCurrent_sendsWhatThePcrsHoldNow() throws Exception {
        byte[] secret = random32();
        service.enrollNode = r -> EnrollNodeResponse.newBuilder().setNode(node(r.getName(), NodeState.PENDING_ACTIVATION))
                .setCredential(ByteString.copyFrom(CredentialActivation.make(r.getEkPublic().toByteArray(),
                        Templates.name(r.getAkPublic().toByteArray()), secret).toTpm2ToolsFile())).build();
        service.activateNode = r -> ActivateNodeResponse.newBuilder().setNode(node(r.getName(), NodeState.ENROLLED)).build();
        byte[][] now;
        try (TpmConnection c = TpmConnection.open(swtpm.config())) {
            var node = io.tpmkms.protection.tpm.attest.TpmAttestation.forNode(c);
            node.resetPcr(16);
            node.extendPcr(16, random32());
            now = node.readPcrs(new int[] {7, 16});
        }

        Result r = run("agent", "--tpm", tpm, "enroll", "node-3", "--pcrs", "7,16", "--golden-values", "current");
        Result withoutPcrs = run("agent", "--tpm", tpm, "enroll", "node-4", "--golden-values", "current");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        EnrollNodeRequest sent = service.only(EnrollNodeRequest.class);
        assertArrayEquals(now[0], sent.getGoldenValues(0).toByteArray(), "PCR 7 as the TPM holds it");
        assertArrayEquals(now[1], sent.getGoldenValues(1).toByteArray(), "PCR 16 as the TPM holds it");
        assertEquals(ExitCodes.USAGE, withoutPcrs.exitCode(), withoutPcrs::toString);
        assertEquals(1, service.requests(EnrollNodeRequest.class).size(), "the usage error sent nothing");
    }

    @Test
    void enroll_aTpmWithoutEkCertificate_failsClearly_andSendsNothing() throws Exception {
        try (Swtpm bare = Swtpm.start()) {
            Result r = run("agent", "--tpm", "unix:" + bare.socket(), "enroll", "node-3");
            assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
            assertTrue(r.stderr().contains("has no EK certificate"), r::toString);
            assertTrue(calls().isEmpty(), () -> calls().toString());
        }
    }

    // ---- attest ---------------------------------------------------------------------------------

    /** What the service does with AttestNode: the quote by the enrolled AK, over the nonce, replaying the log. */
    private AttestNodeResponse verify(AttestNodeRequest r, byte[] nonce) {
        String reason = null;
        try {
            QuoteVerifier.verify(akPublic, r.getQuote().toByteArray(), r.getSignature().toByteArray(), nonce,
                    EventLog.parse(r.getEventLog().toByteArray()).replay(new int[] {16}));
        } catch (QuoteVerifier.QuoteException e) {
            reason = e.reason() + ": " + e.getMessage();
        } catch (EventLog.EventLogException e) {
            reason = "EVENT_LOG_MALFORMED: " + e.getMessage();
        }
        Node.Builder n = node(r.getName(), reason == null ? NodeState.TRUSTED : NodeState.UNTRUSTED).toBuilder();
        if (reason != null) {
            n.setUntrustedReason(reason);
        }
        return AttestNodeResponse.newBuilder().setNode(n).setTrusted(reason == null)
                .setReason(reason == null ? "" : reason).build();
    }

    @Test
    void attest_quotesTheChallengesNonce_withTheLog_trusted_thenUntrustedWhenThePcrMovesBehindTheLog() throws Exception {
        Path log = dir.resolve("boot.log");
        Result m1 = run("agent", "--tpm", tpm, "measure", "--reset", "--pcr", "16", "--event-log", log.toString(), "kernel");
        Result m2 = run("agent", "--tpm", tpm, "measure", "--pcr", "16", "--event-log", log.toString(), "initrd");
        assertEquals(ExitCodes.OK, m1.exitCode(), m1::toString);
        assertEquals(ExitCodes.OK, m2.exitCode(), m2::toString);
        assertEquals(2, EventLog.parse(Files.readAllBytes(log)).events().size(), "both events, one header");
        assertTrue(calls().isEmpty(), "measure needs no key service");

        byte[] nonce = random32();
        service.challenge = r -> GetAttestationChallengeResponse.newBuilder().setNonce(ByteString.copyFrom(nonce))
                .addPcrs(16).build();
        service.attestNode = r -> verify(r, nonce);

        Result trusted = run("agent", "--tpm", tpm, "attest", "node-1", "--event-log", log.toString());

        assertEquals(ExitCodes.OK, trusted.exitCode(), trusted::toString);
        assertEquals("node node-1: TRUSTED\n", trusted.stdout());
        assertEquals("node-1", service.only(GetAttestationChallengeRequest.class).getName());
        AttestNodeRequest sent = service.only(AttestNodeRequest.class);
        assertArrayEquals(nonce, sent.getNonce().toByteArray());
        assertArrayEquals(Files.readAllBytes(log), sent.getEventLog().toByteArray());
        QuoteVerifier.verify(akPublic, sent.getQuote().toByteArray(), sent.getSignature().toByteArray(), nonce,
                EventLog.parse(Files.readAllBytes(log)).replay(new int[] {16}));

        // PCR 16 extended with an event logged elsewhere: the log no longer replays to the quote
        Result behind = run("agent", "--tpm", tpm, "measure", "--event-log", dir.resolve("other.log").toString(), "x");
        assertEquals(ExitCodes.OK, behind.exitCode(), behind::toString);
        service.reset();
        Result untrusted = run("agent", "--tpm", tpm, "attest", "node-1", "--event-log", log.toString());

        assertEquals(ExitCodes.FAILED, untrusted.exitCode(), untrusted::toString);
        assertTrue(untrusted.stdout().startsWith("node node-1: UNTRUSTED (PCR_DIGEST_MISMATCH"), untrusted::toString);
        assertTrue(untrusted.stderr().contains("attestation FAILED: node node-1 is UNTRUSTED: PCR_DIGEST_MISMATCH"),
                untrusted::toString);
    }

    @Test
    void attest_aQuoteOverAnotherNonce_isUntrusted_exitFailedWithTheReason() throws Exception {
        byte[] issued = random32();
        byte[] expected = random32();
        Path log = dir.resolve("boot.log");
        assertEquals(ExitCodes.OK, run("agent", "--tpm", tpm, "measure", "--reset", "--event-log", log.toString(), "k")
                .exitCode());
        service.challenge = r -> GetAttestationChallengeResponse.newBuilder().setNonce(ByteString.copyFrom(issued))
                .addPcrs(16).build();
        service.attestNode = r -> verify(r, expected); // a service that issued another nonce

        Result r = run("--json", "agent", "--tpm", tpm, "attest", "node-1", "--event-log", log.toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        var json = JsonParser.parseString(r.stdout()).getAsJsonObject();
        assertFalse(json.get("trusted").getAsBoolean());
        assertTrue(json.get("reason").getAsString().startsWith("NONCE_MISMATCH"), r::toString);
        assertTrue(r.stderr().contains("is UNTRUSTED: NONCE_MISMATCH"), r::toString);
    }

    // ---- release --------------------------------------------------------------------------------

    @Test
    void release_writesTheDataKeyTheTpmActivates_mode0600_andRefusesToOverwrite() throws Exception {
        service.releaseKey = r -> ReleaseKeyResponse.newBuilder().setVersion(2)
                .setCredential(ByteString.copyFrom(CredentialActivation.make(ekPublic, akName, DATA_KEY).toTpm2ToolsFile()))
                .setWrappedDataKey(ByteString.copyFrom(WRAPPED)).build();
        Path out = dir.resolve("dk.bin");

        Result r = run("agent", "--tpm", tpm, "release", "node-1", "ns/k", "--out", out.toString(), "--aad", "ctx");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        assertArrayEquals(DATA_KEY, Files.readAllBytes(out));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        assertArrayEquals(WRAPPED, Files.readAllBytes(dir.resolve("dk.bin.wrapped")));
        ReleaseKeyRequest sent = service.only(ReleaseKeyRequest.class);
        assertEquals("node-1", sent.getNode());
        assertEquals("ns/k", sent.getKey());
        assertEquals("ctx", sent.getAdditionalAuthenticatedData().toStringUtf8());
        assertNoDataKeyIn(r);

        // an existing file: refused before anything is sent; --force replaces it
        Files.write(out, new byte[] {1});
        Result again = run("agent", "--tpm", tpm, "release", "node-1", "ns/k", "--out", out.toString());
        assertEquals(ExitCodes.USAGE, again.exitCode(), again::toString);
        assertTrue(again.stderr().contains("exists; --force replaces it"), again::toString);
        assertEquals(1, service.requests(ReleaseKeyRequest.class).size());
        assertArrayEquals(new byte[] {1}, Files.readAllBytes(out));
        Result forced = run("agent", "--tpm", tpm, "release", "node-1", "ns/k", "--out", out.toString(), "--force");
        assertEquals(ExitCodes.OK, forced.exitCode(), forced::toString);
        assertArrayEquals(DATA_KEY, Files.readAllBytes(out));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));

        // --json: the wrapped copy in the output, no .wrapped file
        Path out2 = dir.resolve("dk2.bin");
        Result json = run("--json", "agent", "--tpm", tpm, "release", "node-1", "ns/k", "--out", out2.toString());
        assertEquals(ExitCodes.OK, json.exitCode(), json::toString);
        assertEquals(Base64.getEncoder().encodeToString(WRAPPED), JsonParser.parseString(json.stdout()).getAsJsonObject()
                .get("wrappedDataKey").getAsString());
        assertArrayEquals(DATA_KEY, Files.readAllBytes(out2));
        assertFalse(Files.exists(dir.resolve("dk2.bin.wrapped")));
        assertNoDataKeyIn(json);
    }

    @Test
    void release_aCredentialForAnotherAk_isRefusedByTheTpm_andWritesNothing() throws Exception {
        byte[] otherName = Templates.name(EkTemplates.forCertifiedKey(java.security.KeyPairGenerator.getInstance("EC")
                .generateKeyPair().getPublic()));
        service.releaseKey = r -> ReleaseKeyResponse.newBuilder()
                .setCredential(ByteString.copyFrom(CredentialActivation.make(ekPublic, otherName, DATA_KEY).toTpm2ToolsFile()))
                .setWrappedDataKey(ByteString.copyFrom(WRAPPED)).build();
        Path out = dir.resolve("dk.bin");

        Result r = run("agent", "--tpm", tpm, "release", "node-1", "ns/k", "--out", out.toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("refused the credential"), r::toString);
        assertFalse(Files.exists(out));
        assertFalse(Files.exists(dir.resolve("dk.bin.wrapped")));
    }

    private static void assertNoDataKeyIn(Result r) {
        for (String form : List.of(HexFormat.of().formatHex(DATA_KEY), Base64.getEncoder().encodeToString(DATA_KEY))) {
            assertFalse(r.stdout().contains(form) || r.stderr().contains(form), r::toString);
        }
    }

    // ---- usage ----------------------------------------------------------------------------------

    @Test
    void usageErrors_exitUsage_andSendNothing() throws Exception {
        Path out = dir.resolve("never.bin");
        for (String[] args : List.of(
                new String[] {"agent", "--tpm", "bogus", "enroll", "n"},
                new String[] {"agent", "--tpm", "tcp:localhost", "enroll", "n"},
                new String[] {"agent", "--tpm", "tcp:localhost:port", "attest", "n"},
                new String[] {"agent", "--tpm", "bogus", "release", "n", "ns/k", "--out", out.toString()},
                new String[] {"agent", "--tpm", tpm, "enroll"},
                new String[] {"agent", "--tpm", tpm, "enroll", "n", "--golden-values", "00"},
                new String[] {"agent", "--tpm", tpm, "enroll", "n", "--pcrs", "16", "--golden-values", "zz"},
                new String[] {"agent", "--tpm", tpm, "attest", "n", "--event-log", dir.resolve("missing").toString()},
                new String[] {"agent", "--tpm", tpm, "release", "n", "ns/k"},
                new String[] {"agent", "--tpm", tpm, "release", "n", "--out", out.toString()},
                new String[] {"agent", "--tpm", tpm, "measure", "--reset", "--pcr", "7", "--event-log",
                        dir.resolve("m.log").toString(), "x"},
                new String[] {"nodes", "get"})) {
            Result r = run(args);
            assertEquals(ExitCodes.USAGE, r.exitCode(), () -> String.join(" ", args) + "\n" + r);
            assertTrue(r.stderr().startsWith("error: "), r::toString);
        }
        assertTrue(calls().isEmpty(), () -> calls().toString());
        assertFalse(Files.exists(out));
    }

    @Test
    void theGroupsAlone_printTheirUsage() {
        Result agent = run("agent");
        assertEquals(ExitCodes.USAGE, agent.exitCode(), agent::toString);
        for (String word : List.of("--tpm", "enroll", "attest", "release", "measure")) {
            assertTrue(agent.stderr().contains(word), () -> word + "\n" + agent);
        }
        Result nodes = run("nodes");
        assertEquals(ExitCodes.USAGE, nodes.exitCode(), nodes::toString);
        assertTrue(nodes.stderr().contains("revoke"), nodes::toString);
        Result help = run("--help");
        assertTrue(help.stdout().contains("nodes") && help.stdout().contains("agent"), help::toString);
        assertTrue(calls().isEmpty());
    }

    @Test
    void anUnreachableTpm_exitsUnreachable_andSendsNothing() {
        Result r = run("agent", "--tpm", "unix:" + dir.resolve("no-such.sock"), "enroll", "n");
        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("TPM unix:"), r::toString);
        assertTrue(calls().isEmpty(), () -> calls().toString());
    }

    // ---- nodes list / get / revoke --------------------------------------------------------------

    @Test
    void nodesList_printsTheTable_andJson() throws Exception {
        Node trusted = node("edge-1", NodeState.TRUSTED).toBuilder()
                .setLastAttestTime(Timestamp.newBuilder().setSeconds(1_900_000_100)).build();
        Node untrusted = node("edge-2", NodeState.UNTRUSTED).toBuilder()
                .setUntrustedReason("PCR_DIGEST_MISMATCH: PCR 16").build();
        service.respond(ListNodesResponse.newBuilder().addNodes(trusted).addNodes(untrusted).build());

        Result r = run("nodes", "list");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        assertEquals("""
                NAME    STATE      TPM                            LAST ATTESTED         REASON
                edge-1  TRUSTED    id:00001014 swtpm id:20191023  2030-03-17T17:48:20Z  -
                edge-2  UNTRUSTED  id:00001014 swtpm id:20191023  -                     PCR_DIGEST_MISMATCH: PCR 16
                """, r.stdout());

        service.respond(ListNodesResponse.newBuilder().addNodes(trusted).build());
        Result json = run("--json", "nodes", "list");
        assertEquals("edge-1", JsonParser.parseString(json.stdout()).getAsJsonObject().getAsJsonArray("nodes").get(0)
                .getAsJsonObject().get("name").getAsString());
    }

    @Test
    void nodesGet_andRevoke_printTheNode() throws Exception {
        byte[] golden = new byte[32];
        golden[0] = (byte) 0xab;
        service.respond(GetNodeResponse.newBuilder().setNode(node("edge-1", NodeState.UNTRUSTED).toBuilder()
                .addGoldenValues(ByteString.copyFrom(golden)).setUntrustedReason("NONCE_MISMATCH: x")).build());

        Result r = run("nodes", "get", "edge-1");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        assertEquals("edge-1", service.only(GetNodeRequest.class).getName());
        for (String line : List.of("name:              edge-1", "state:             UNTRUSTED",
                "EK subject:        CN=ek-subject", "EK issuer:         CN=swtpm-localca",
                "TPM:               id:00001014 swtpm id:20191023", "AK name:           000bab", "PCRs:              sha256:16",
                "golden values:     16=ab" + "00".repeat(31), "created:           2030-03-17T17:46:40Z",
                "untrusted reason:  NONCE_MISMATCH: x", "revoked:           -")) {
            assertTrue(r.stdout().contains(line + "\n"), () -> line + "\n" + r);
        }

        service.respond(RevokeNodeResponse.newBuilder().setNode(node("edge-1", NodeState.REVOKED)).build());
        Result revoked = run("--json", "nodes", "revoke", "edge-1");
        assertEquals(ExitCodes.OK, revoked.exitCode(), revoked::toString);
        assertEquals("edge-1", service.only(RevokeNodeRequest.class).getName());
        assertEquals("REVOKED", JsonParser.parseString(revoked.stdout()).getAsJsonObject().getAsJsonObject("node")
                .get("state").getAsString());
    }

    @Test
    void serviceErrors_arePrintedCentrally() {
        service.fail(io.grpc.Status.Code.NOT_FOUND, "node \"ghost\" not found", "NODE_NOT_FOUND");
        Result r = run("nodes", "get", "ghost");
        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("node \"ghost\" not found"), r::toString);
    }
}

package io.tpmkms.key.nodes;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.platform.audit.AuditJournal;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.CredentialActivation;
import io.tpmkms.protection.tpm.attest.EventLogWriter;
import io.tpmkms.protection.tpm.attest.TpmAttestation;
import io.tpmkms.protection.tpm.attest.TpmAttestation.EkType;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Issue 20 / ADR 0038 through the real gRPC key service and PostgreSQL, with a real node TPM
 * (swtpm with an EK certificate from its local CA, the stand-in manufacturer): the node agent's side
 * is TpmAttestation.forNode on that TPM. Enrollment proves the AK by credential activation; quotes
 * with the challenge's nonce and an event log that replays to the quoted PCR 16 make the node
 * TRUSTED; a wrong nonce, a PCR extended behind the log's back, a replayed challenge fail with the
 * reason; a released data key is unwrapped by the node's TPM alone; revocation stops releases; every
 * step is in the audit trail.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@WithTestResource(NodeSwtpmResource.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NodeAttestationTest extends GrpcTest {
  @jakarta.inject.Inject io.agroal.api.AgroalDataSource db;

  private TpmConnection tpm;
  private TpmAttestation node;

  @BeforeAll
  void openNodeTpm() {
    tpm = TpmConnection.open(NodeSwtpmResource.node().config());
    node = TpmAttestation.forNode(tpm);
  }

  @AfterAll
  void closeNodeTpm() {
    if (tpm != null) tpm.close();
  }

  /** Enrolls with PCR 16 and, as golden value, what {@link #measuredBoot} makes of it. */
  private EnrollNodeResponse enroll(String name, byte[] akPublic) {
    measuredBoot();
    byte[] golden = node.readPcrs(new int[] {16})[0];
    return enroll(name, akPublic, golden);
  }

  private EnrollNodeResponse enroll(String name, byte[] akPublic, byte[] golden) {
    TpmAttestation.EndorsementKey ek = node.endorsementKey(EkType.RSA_2048);
    EnrollNodeRequest.Builder b = EnrollNodeRequest.newBuilder().setName(name)
        .setEkPublic(ByteString.copyFrom(ek.tpmtPublic())).setEkCertificate(ByteString.copyFrom(ek.certificate()))
        .setAkPublic(ByteString.copyFrom(akPublic)).addPcrs(16);
    if (golden != null) b.addGoldenValues(ByteString.copyFrom(golden));
    return client.keys().enrollNode(b.build());
  }

  private byte[] activate(ByteString credential) throws Exception {
    return node.activateCredential(EkType.RSA_2048, CredentialActivation.Credential.fromTpm2ToolsFile(
        credential.toByteArray()));
  }

  /** Resets PCR 16 and measures two events into it, logging them: the log replays to the PCR. */
  private byte[] measuredBoot() {
    node.resetPcr(16);
    EventLogWriter log = new EventLogWriter();
    log.measure(node, 16, 0x0D /* EV_IPL */, "kernel".getBytes(StandardCharsets.UTF_8));
    log.measure(node, 16, 0x0D, "initrd".getBytes(StandardCharsets.UTF_8));
    return log.toBytes();
  }

  private AttestNodeResponse attest(String name, byte[] log, boolean rightNonce) {
    GetAttestationChallengeResponse c = client.keys().getAttestationChallenge(
        GetAttestationChallengeRequest.newBuilder().setName(name).build());
    assertEquals(List.of(16), c.getPcrsList());
    byte[] quoted = rightNonce ? c.getNonce().toByteArray() : new byte[32];
    TpmAttestation.Quote q = node.quote(new int[] {16}, quoted);
    return client.keys().attestNode(AttestNodeRequest.newBuilder().setName(name).setNonce(c.getNonce())
        .setQuote(ByteString.copyFrom(q.attest())).setSignature(ByteString.copyFrom(q.signature()))
        .setEventLog(ByteString.copyFrom(log)).build());
  }

  @Test
  void enroll_activate_attest_release_revoke_withEveryRefusal() throws Exception {
    String name = "node-" + System.nanoTime() % 100000;
    TpmAttestation.AttestationKey ak = node.attestationKey();

    // enrollment: the credential is answered only by this TPM
    EnrollNodeResponse enrolled = enroll(name, ak.tpmtPublic());
    assertEquals(NodeState.PENDING_ACTIVATION, enrolled.getNode().getState());
    assertEquals("swtpm", enrolled.getNode().getTpmModel(), "the TCG subjectAltName of the EK certificate");
    assertArrayEquals(ak.name(), enrolled.getNode().getAkName().toByteArray());
    assertStatus(Status.Code.ALREADY_EXISTS, "NODE_ALREADY_EXISTS", () -> enroll(name, ak.tpmtPublic()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "NODE_NOT_ACTIVATED", () -> client.keys().getAttestationChallenge(
        GetAttestationChallengeRequest.newBuilder().setName(name).build()));
    byte[] secret = activate(enrolled.getCredential());
    Node active = client.keys().activateNode(ActivateNodeRequest.newBuilder().setName(name)
        .setSecret(ByteString.copyFrom(secret)).build()).getNode();
    assertEquals(NodeState.ENROLLED, active.getState());
    assertStatus(Status.Code.FAILED_PRECONDITION, "NODE_ACTIVATION_FAILED", () -> client.keys().activateNode(
        ActivateNodeRequest.newBuilder().setName(name).setSecret(ByteString.copyFrom(secret)).build()));

    // attestation: a measured boot whose log replays to PCR 16
    AttestNodeResponse good = attest(name, measuredBoot(), true);
    assertTrue(good.getTrusted(), good.getReason());
    assertEquals(NodeState.TRUSTED, good.getNode().getState());

    // release: only the node's TPM unwraps the data key; Decrypt of the wrapped copy gives the same key
    String keyName = "k" + System.nanoTime() % 100000;
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("nodes").setName(keyName)
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    ReleaseKeyResponse released = client.keys().releaseKey(ReleaseKeyRequest.newBuilder().setNode(name)
        .setKey("nodes/" + keyName).build());
    byte[] dataKey = activate(released.getCredential());
    assertEquals(32, dataKey.length);
    assertArrayEquals(dataKey, client.keys().decrypt(DecryptRequest.newBuilder().setKey("nodes/" + keyName)
        .setCiphertext(released.getWrappedDataKey()).build()).getPlaintext().toByteArray());

    // a quote over another nonce (an old quote replayed) or a forged one: refused, and the node's state stays —
    // whoever holds no node TPM cannot make it UNTRUSTED
    byte[] boot = measuredBoot();
    assertStatus(Status.Code.INVALID_ARGUMENT, "QUOTE_INVALID", () -> attest(name, boot, false));
    GetAttestationChallengeResponse forgedFor = client.keys().getAttestationChallenge(
        GetAttestationChallengeRequest.newBuilder().setName(name).build());
    assertStatus(Status.Code.INVALID_ARGUMENT, "QUOTE_INVALID", () -> client.keys().attestNode(AttestNodeRequest
        .newBuilder().setName(name).setNonce(forgedFor.getNonce()).setQuote(ByteString.copyFrom(new byte[100]))
        .setSignature(ByteString.copyFrom(new byte[70])).setEventLog(ByteString.copyFrom(boot)).build()));
    assertEquals(NodeState.TRUSTED, client.keys().getNode(GetNodeRequest.newBuilder().setName(name).build())
        .getNode().getState());
    assertTrue(attest(name, measuredBoot(), true).getTrusted());

    // PCR 16 extended after boot and not logged: the log no longer replays to the quoted value
    byte[] log = measuredBoot();
    node.extendPcr(16, new byte[32]);
    AttestNodeResponse tampered = attest(name, log, true);
    assertFalse(tampered.getTrusted());
    assertTrue(tampered.getReason().startsWith("PCR_DIGEST_MISMATCH"), tampered.getReason());
    assertEquals(tampered.getReason(), client.keys().getNode(GetNodeRequest.newBuilder().setName(name).build())
        .getNode().getUntrustedReason());
    assertStatus(Status.Code.FAILED_PRECONDITION, "NODE_NOT_TRUSTED", () -> client.keys().releaseKey(
        ReleaseKeyRequest.newBuilder().setNode(name).setKey("nodes/" + keyName).build()));
    // a boot that replays but is not the golden one: UNTRUSTED GOLDEN_VALUE_MISMATCH
    node.resetPcr(16);
    EventLogWriter other = new EventLogWriter();
    other.measure(node, 16, 0x0D, "another kernel".getBytes(StandardCharsets.UTF_8));
    AttestNodeResponse notGolden = attest(name, other.toBytes(), true);
    assertFalse(notGolden.getTrusted());
    assertTrue(notGolden.getReason().startsWith("GOLDEN_VALUE_MISMATCH: PCR 16"), notGolden.getReason());

    // a replayed challenge: the nonce is spent once used
    GetAttestationChallengeResponse c = client.keys().getAttestationChallenge(
        GetAttestationChallengeRequest.newBuilder().setName(name).build());
    byte[] fresh = measuredBoot();
    TpmAttestation.Quote q = node.quote(new int[] {16}, c.getNonce().toByteArray());
    AttestNodeRequest request = AttestNodeRequest.newBuilder().setName(name).setNonce(c.getNonce())
        .setQuote(ByteString.copyFrom(q.attest())).setSignature(ByteString.copyFrom(q.signature()))
        .setEventLog(ByteString.copyFrom(fresh)).build();
    assertTrue(client.keys().attestNode(request).getTrusted());
    assertStatus(Status.Code.FAILED_PRECONDITION, "CHALLENGE_INVALID", () -> client.keys().attestNode(request));

    // revocation stops releases and attestations
    assertEquals(NodeState.REVOKED, client.keys().revokeNode(RevokeNodeRequest.newBuilder().setName(name).build())
        .getNode().getState());
    assertStatus(Status.Code.FAILED_PRECONDITION, "NODE_REVOKED", () -> client.keys().releaseKey(
        ReleaseKeyRequest.newBuilder().setNode(name).setKey("nodes/" + keyName).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "NODE_REVOKED", () -> client.keys().getAttestationChallenge(
        GetAttestationChallengeRequest.newBuilder().setName(name).build()));

    // every step in the audit trail under node:<name>
    List<String> ops = operations("node:" + name);
    for (String op : List.of("EnrollNode", "ActivateNode", "GetAttestationChallenge", "AttestNode", "RevokeNode")) {
      assertTrue(ops.contains(op), op + " in " + ops);
    }
    List<String> releases = operations("nodes/" + keyName);
    assertTrue(releases.stream().filter("ReleaseKey"::equals).count() >= 3, "released, refused, refused: " + releases);
    assertTrue(ops.contains("AttestNode") && operations("node:" + name).stream().filter("AttestNode"::equals).count() >= 5,
        "every attestation, refused ones too: " + ops);
  }

  @Test
  void enrollment_refusals_selfSignedEk_wrongAk_wrongSecret() throws Exception {
    TpmAttestation.EndorsementKey ek = node.endorsementKey(EkType.RSA_2048);
    TpmAttestation.AttestationKey ak = node.attestationKey();
    // a certificate over the genuine EK key, but self-signed: not from the manufacturer
    byte[] selfSigned = selfSigned(ek);
    assertStatus(Status.Code.INVALID_ARGUMENT, "EK_CERTIFICATE_INVALID", () -> client.keys().enrollNode(
        EnrollNodeRequest.newBuilder().setName("forged").setEkPublic(ByteString.copyFrom(ek.tpmtPublic()))
            .setEkCertificate(ByteString.copyFrom(selfSigned)).setAkPublic(ByteString.copyFrom(ak.tpmtPublic())).build()));
    // the EK as "AK": not a restricted signing key
    assertStatus(Status.Code.INVALID_ARGUMENT, "ATTESTATION_KEY_INVALID", () -> client.keys().enrollNode(
        EnrollNodeRequest.newBuilder().setName("bad-ak").setEkPublic(ByteString.copyFrom(ek.tpmtPublic()))
            .setEkCertificate(ByteString.copyFrom(ek.certificate())).setAkPublic(ByteString.copyFrom(ek.tpmtPublic()))
            .build()));
    assertStatus(Status.Code.NOT_FOUND, "NODE_NOT_FOUND",
        () -> client.keys().getNode(GetNodeRequest.newBuilder().setName("forged").build()));

    // an AK that is not in this TPM (the service's own AK template is another key): the TPM refuses the
    // credential, so the node cannot answer; a guessed secret is refused and spends the enrollment
    byte[] otherAk = new TpmAttestation(tpm).attestationKey().tpmtPublic();
    EnrollNodeResponse e = enroll("other-ak", otherAk);
    assertThrows(CredentialActivation.ActivationException.class, () -> activate(e.getCredential()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "NODE_ACTIVATION_FAILED", () -> client.keys().activateNode(
        ActivateNodeRequest.newBuilder().setName("other-ak").setSecret(ByteString.copyFrom(new byte[32])).build()));
    // the enrollment is spent: enrolling again (with the right AK) gives a new credential that works
    EnrollNodeResponse again = enroll("other-ak", node.attestationKey().tpmtPublic());
    byte[] secret = activate(again.getCredential());
    assertEquals(NodeState.ENROLLED, client.keys().activateNode(ActivateNodeRequest.newBuilder().setName("other-ak")
        .setSecret(ByteString.copyFrom(secret)).build()).getNode().getState());
    // a node enrolled without golden values attests (its log is consistent) but gets no keys
    EnrollNodeResponse noGolden = enroll("no-golden", node.attestationKey().tpmtPublic(), null);
    client.keys().activateNode(ActivateNodeRequest.newBuilder().setName("no-golden")
        .setSecret(ByteString.copyFrom(activate(noGolden.getCredential()))).build());
    assertTrue(attest("no-golden", measuredBoot(), true).getTrusted());
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("nodes").setName("ng")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    io.grpc.StatusRuntimeException noKeys = assertThrows(io.grpc.StatusRuntimeException.class, () -> client.keys()
        .releaseKey(ReleaseKeyRequest.newBuilder().setNode("no-golden").setKey("nodes/ng").build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, noKeys.getStatus().getCode());
    assertTrue(noKeys.getStatus().getDescription().contains("no golden values"), noKeys.getStatus().getDescription());
    // the key service's own AK is never a node's (on a host with a TPM; this service has none, so the check is
    // exercised through the template: the node AK and the service AK are different keys of the same TPM)
    assertFalse(java.util.Arrays.equals(node.attestationKey().name(), new TpmAttestation(tpm).attestationKey().name()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_NODE_NAME",
        () -> client.keys().getNode(GetNodeRequest.newBuilder().setName("Bad Name").build()));
    assertTrue(client.keys().listNodes(ListNodesRequest.getDefaultInstance()).getNodesList().stream()
        .anyMatch(n -> n.getName().equals("other-ak")));
  }

  /**
   * tpm2-tools as the node agent for the last step: a data key released to a TRUSTED node comes out of
   * tpm2_activatecredential under tpm2-tools' own EK (tpm2_createek) and the node AK re-created with
   * tpm2_createprimary from its template (the unique field is the node AK's): the credential needs
   * nothing from tpmkms on the node.
   */
  @Test
  void releasedKey_activatesWithTpm2Tools() throws Exception {
    String name = "tools-" + System.nanoTime() % 100000;
    TpmAttestation.AttestationKey ak = node.attestationKey();
    EnrollNodeResponse e = enroll(name, ak.tpmtPublic());
    client.keys().activateNode(ActivateNodeRequest.newBuilder().setName(name)
        .setSecret(ByteString.copyFrom(activate(e.getCredential()))).build());
    assertTrue(attest(name, measuredBoot(), true).getTrusted());
    String keyName = "t" + System.nanoTime() % 100000;
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("nodes").setName(keyName)
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    ReleaseKeyResponse released = client.keys().releaseKey(ReleaseKeyRequest.newBuilder().setNode(name)
        .setKey("nodes/" + keyName).build());
    byte[] expected = client.keys().decrypt(DecryptRequest.newBuilder().setKey("nodes/" + keyName)
        .setCiphertext(released.getWrappedDataKey()).build()).getPlaintext().toByteArray();

    tpm.releaseConnection(); // swtpm serves one connection at a time
    Path d = java.nio.file.Files.createDirectories(NodeSwtpmResource.node().dir.resolve(name));
    java.nio.file.Files.write(d.resolve("cred"), released.getCredential().toByteArray());
    // TPMU_PUBLIC_ID of the node AK as tpm2_createprimary -u takes it: TPMS_ECC_POINT, sizes little-endian
    byte[] x = java.security.MessageDigest.getInstance("SHA-256").digest(
        "tpmkms/node-ak/v1".getBytes(StandardCharsets.US_ASCII));
    byte[] unique = new byte[2 + 32 + 2];
    unique[0] = 32;
    System.arraycopy(x, 0, unique, 2, 32);
    java.nio.file.Files.write(d.resolve("unique"), unique);
    tools("tpm2_createek", "-c", d.resolve("ek.ctx"), "-G", "rsa");
    tools("tpm2_flushcontext", "-t");
    tools("tpm2_createprimary", "-C", "e", "-g", "sha256", "-G", "ecc256:ecdsa-sha256:null",
        "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|sign",
        "-u", d.resolve("unique"), "-c", d.resolve("ak.ctx"));
    tools("tpm2_readpublic", "-c", d.resolve("ak.ctx"), "-n", d.resolve("ak.name"));
    assertArrayEquals(ak.name(), java.nio.file.Files.readAllBytes(d.resolve("ak.name")),
        "tpm2_createprimary re-creates the node AK the service enrolled");
    tools("tpm2_flushcontext", "-t");
    Path session = d.resolve("session.ctx");
    tools("tpm2_startauthsession", "--policy-session", "-S", session);
    tools("tpm2_policysecret", "-S", session, "-c", "e");
    tools("tpm2_activatecredential", "-c", d.resolve("ak.ctx"), "-C", d.resolve("ek.ctx"), "-i", d.resolve("cred"),
        "-o", d.resolve("data.key"), "-P", "session:" + session);
    assertArrayEquals(expected, java.nio.file.Files.readAllBytes(d.resolve("data.key")),
        "the node's TPM gives the released data key");
    Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", NodeSwtpmResource.node().tcti(), "-t"), 30);
    Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", NodeSwtpmResource.node().tcti(), "-s"), 30);
  }

  private void tools(Object... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of(args[0].toString(), "-T", NodeSwtpmResource.node().tcti()));
    for (int i = 1; i < args.length; i++) cmd.add(args[i].toString());
    String out = Swtpm.runAllowingFailure(cmd, 60);
    assertTrue(out.startsWith("exit 0"), String.join(" ", cmd) + "\n" + out);
  }

  /** A certificate over the EK's key, signed by a key of its own. */
  private static byte[] selfSigned(TpmAttestation.EndorsementKey ek) throws Exception {
    var real = (java.security.cert.X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
        .generateCertificate(new java.io.ByteArrayInputStream(ek.certificate()));
    var gen = java.security.KeyPairGenerator.getInstance("RSA");
    gen.initialize(2048);
    var signer = gen.generateKeyPair();
    var name = new org.bouncycastle.asn1.x500.X500Name(real.getIssuerX500Principal().getName());
    var b = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(name, java.math.BigInteger.TEN,
        java.util.Date.from(java.time.Instant.now().minusSeconds(60)),
        java.util.Date.from(java.time.Instant.now().plusSeconds(3600)),
        new org.bouncycastle.asn1.x500.X500Name("CN=forged EK"), real.getPublicKey());
    return b.build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withRSA")
        .build(signer.getPrivate())).getEncoded();
  }

  /** The operations of the audit events whose key is {@code key}: outbox and journal. */
  private List<String> operations(String key) throws Exception {
    List<String> out = new ArrayList<>();
    try (Connection c = db.getConnection(); Statement st = c.createStatement();
        var rs = st.executeQuery("SELECT payload FROM audit_outbox ORDER BY id")) {
      while (rs.next()) {
        AuditEvent e = AuditEvent.parseFrom(rs.getBytes(1));
        if (e.getKey().equals(key)) out.add(e.getOperation().replaceAll(".*/", ""));
      }
    }
    for (byte[] p : AuditJournal.pending(Path.of(ConfigProvider.getConfig().getValue("tpmkms.audit.journal.dir",
        String.class)))) {
      AuditEvent e = AuditEvent.parseFrom(p);
      if (e.getKey().equals(key)) out.add(e.getOperation().replaceAll(".*/", ""));
    }
    return out;
  }
}

package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.Decision;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.proto.policy.v1.CreatePolicyRequest;
import io.tpmkms.proto.policy.v1.CreateRoleBindingRequest;
import io.tpmkms.proto.policy.v1.DeletePolicyRequest;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.proto.policy.v1.Resource;
import io.tpmkms.proto.policy.v1.Role;
import io.tpmkms.proto.policy.v1.RoleBinding;
import io.tpmkms.proto.policy.v1.Subject;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.function.Function;
import org.jboss.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Identity and authorization through the whole real stack: the Keycloak
 * distribution with the repo's realm, the policy service and the key service
 * as packaged processes, each on its own PostgreSQL, gRPC over sockets.
 *
 * <ul>
 *   <li>the role matrix: every key-service RPC × every role, allowed or
 *       denied as docs/authorization.md says, and a denied call changes
 *       nothing and is audited as DENY with its reason;
 *   <li>per-namespace, per-key and per-group bindings, and a binding on one
 *       namespace gives nothing on another;
 *   <li>missing, expired, tampered, wrong-audience and other-realm tokens →
 *       UNAUTHENTICATED;
 *   <li>a policy change applies within the documented bound;
 *   <li>policy service stopped → UNAVAILABLE and nothing happens (fail closed).
 * </ul>
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AuthorizationIT {
  private static final Logger LOG = Logger.getLogger(AuthorizationIT.class);
  private static final String REALM = "tpmkms";
  private static final String CLI = "tpmkms-cli";
  /** The key service's decision cache in this test; the policy service reloads every 500 ms. */
  private static final long CACHE_TTL_MS = 1_000;

  enum R { VIEWER, USER, ADMIN, DUPLICATOR, AUDITOR, NODE, NOBODY }

  @TempDir static Path dir;
  static Keycloak keycloak;
  static EmbeddedPostgres keyDb;
  static EmbeddedPostgres policyDb;
  static ServiceProcess keyService;
  static ServiceProcess policyService;
  static ManagedChannel keyChannel;
  static ManagedChannel policyChannel;

  /** Stops what {@link #start} started (the services outlived the test JVM before). */
  @AfterAll
  static void stop() throws Exception {
    if (keyChannel != null) keyChannel.shutdownNow();
    if (policyChannel != null) policyChannel.shutdownNow();
    if (keyService != null) keyService.close();
    if (policyService != null) policyService.close();
    if (keyDb != null) keyDb.close();
    if (policyDb != null) policyDb.close();
  }
  static final Map<R, String> tokens = new LinkedHashMap<>();
  static final Map<R, String> subjects = new LinkedHashMap<>();
  static String adminToken;
  static String keyMetrics;

  @BeforeAll
  static void start() throws Exception {
    Path root = Path.of("..").toAbsolutePath().normalize();
    keycloak = SharedKeycloak.get();
    keyDb = EmbeddedPostgres.builder().start();
    policyDb = EmbeddedPostgres.builder().start();
    int[] ports = ServiceProcess.freePorts(4);
    int policyPort = ports[0];
    int keyPort = ports[1];
    Map<String, String> policyEnv = new LinkedHashMap<>();
    policyEnv.put("QUARKUS_DATASOURCE_JDBC_URL", policyDb.getJdbcUrl("postgres", "postgres"));
    policyEnv.put("QUARKUS_DATASOURCE_USERNAME", "postgres");
    policyEnv.put("QUARKUS_DATASOURCE_PASSWORD", "postgres");
    policyEnv.put("TPMKMS_POLICY_GRPC_PORT", Integer.toString(policyPort));
    policyEnv.put("TPMKMS_POLICY_HTTP_PORT", Integer.toString(ports[2]));
    policyEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("policy")).toString());
    policyEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(REALM));
    policyEnv.putAll(SystemTls.env("policy-service"));
    policyService = ServiceProcess.start(root.resolve("policy-service/target/quarkus-app/quarkus-run.jar"),
        policyEnv, dir.resolve("policy.log"));
    Map<String, String> keyEnv = new LinkedHashMap<>();
    keyEnv.put("QUARKUS_DATASOURCE_JDBC_URL", keyDb.getJdbcUrl("postgres", "postgres"));
    keyEnv.put("QUARKUS_DATASOURCE_USERNAME", "postgres");
    keyEnv.put("QUARKUS_DATASOURCE_PASSWORD", "postgres");
    keyEnv.put("TPMKMS_GRPC_PORT", Integer.toString(keyPort));
    keyEnv.put("TPMKMS_HTTP_PORT", Integer.toString(ports[3]));
    keyMetrics = "http://127.0.0.1:" + ports[3] + "/q/metrics";
    keyEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("key")).toString());
    keyEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(REALM));
    keyEnv.put("TPMKMS_POLICY_SERVICE", "127.0.0.1:" + policyPort);
    keyEnv.put("TPMKMS_AUTHZ_CACHE_TTL", CACHE_TTL_MS + "ms");
    keyEnv.putAll(SystemTls.env("key-service"));
    keyService = ServiceProcess.start(root.resolve("key-service/target/quarkus-app/quarkus-run.jar"), keyEnv,
        dir.resolve("key.log"));
    keyChannel = SystemTls.channel(keyPort);
    policyChannel = SystemTls.channel(policyPort);

    // One user per role: the realm roles tpmkms-<role> are bound to the role on the whole
    // deployment by the policy service's bootstrap bindings.
    for (R r : R.values()) {
      String name = "it-" + r.name().toLowerCase();
      List<String> roles = r == R.NOBODY ? List.of() : List.of("tpmkms-" + r.name().toLowerCase());
      subjects.put(r, keycloak.createUser(REALM, name, name + "-pw", roles, List.of()));
      tokens.put(r, token(name));
    }
    adminToken = tokens.get(R.ADMIN);
    for (String[] k : new String[][] {{"enc", "ENCRYPT_DECRYPT"}, {"sig", "ASYMMETRIC_SIGN"}, {"mac", "MAC"},
        {"rsa", "ASYMMETRIC_DECRYPT"}, {"life", "ENCRYPT_DECRYPT"}}) {
      keys(adminToken).createKey(CreateKeyRequest.newBuilder().setNamespace("alpha").setName(k[0])
          .setPurpose(KeyPurpose.valueOf(k[1])).build());
    }
    keys(adminToken).rotateKey(RotateKeyRequest.newBuilder().setKey("alpha/life").build());
    keys(adminToken).createKey(CreateKeyRequest.newBuilder().setNamespace("alpha").setName("imp")
        .setPurpose(KeyPurpose.MAC).setImportOnly(true).build());
    ImportJob job = keys(adminToken).createImportJob(CreateImportJobRequest.newBuilder().setNamespace("alpha")
        .setJobId("job").setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
        .setWait(com.google.protobuf.Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    assertEquals(ImportJobState.ACTIVE, job.getState(), "the matrix's import job is ready");
    jobPublicKey = ImportWrap.publicKey(job.getPublicKeyPem());
  }

  static java.security.PublicKey jobPublicKey;

  /** A fresh 32-byte HMAC key wrapped for the matrix's job (ImportWrap). */
  static ByteString wrappedHmacKey() {
    try {
      byte[] material = new byte[32];
      new java.security.SecureRandom().nextBytes(material);
      return ImportWrap.wrap(jobPublicKey, material);
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---- the role matrix ----

  /** One key-service RPC, called with valid arguments, and the roles documented to be allowed it. */
  record Rpc(String name, Set<R> allowed, Function<KeyServiceGrpc.KeyServiceBlockingStub, Object> call) {}

  static final Set<R> READERS = EnumSet.of(R.VIEWER, R.USER, R.ADMIN, R.DUPLICATOR, R.AUDITOR);
  static final Set<R> USERS = EnumSet.of(R.USER);
  static final Set<R> ADMINS = EnumSet.of(R.ADMIN);
  /** Import jobs and imports: admins (the duplicator role is for TPM duplication, issue 14). */
  static final Set<R> IMPORTERS = EnumSet.of(R.ADMIN);
  /** ExportKeyVersion (TPM duplication, ADR 0025): duplicators only, not even admins. */
  static final Set<R> DUPLICATORS = EnumSet.of(R.DUPLICATOR);

  static List<Rpc> rpcs() {
    ByteString data = ByteString.copyFromUtf8("matrix");
    List<Rpc> l = new ArrayList<>();
    // reads: every role
    l.add(new Rpc("GetKey", READERS, s -> s.getKey(GetKeyRequest.newBuilder().setKey("alpha/enc").build())));
    l.add(new Rpc("ListKeys", READERS, s -> s.listKeys(ListKeysRequest.newBuilder().setNamespace("alpha").build())));
    l.add(new Rpc("ListKeyVersions", READERS,
        s -> s.listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey("alpha/enc").build())));
    l.add(new Rpc("GetKeyVersion", READERS,
        s -> s.getKeyVersion(GetKeyVersionRequest.newBuilder().setKey("alpha/enc").setVersion(1).build())));
    l.add(new Rpc("GetPublicKey", READERS,
        s -> s.getPublicKey(GetPublicKeyRequest.newBuilder().setKey("alpha/sig").build())));
    l.add(new Rpc("GetKeyAttestation", READERS,
        s -> s.getKeyAttestation(GetKeyAttestationRequest.newBuilder().setKey("alpha/sig").build())));
    // nodes (ADR 0038), on a node that does not exist: allowed roles get NOT_FOUND (or INVALID_ARGUMENT)
    l.add(new Rpc("EnrollNode", ADMINS, s -> s.enrollNode(EnrollNodeRequest.newBuilder().setName("no-node").build())));
    l.add(new Rpc("ActivateNode", ADMINS, s -> s.activateNode(ActivateNodeRequest.newBuilder().setName("no-node").build())));
    l.add(new Rpc("RevokeNode", ADMINS, s -> s.revokeNode(RevokeNodeRequest.newBuilder().setName("no-node").build())));
    Set<R> nodeReaders = EnumSet.of(R.VIEWER, R.USER, R.ADMIN, R.DUPLICATOR, R.AUDITOR, R.NODE);
    l.add(new Rpc("GetNode", nodeReaders, s -> s.getNode(GetNodeRequest.newBuilder().setName("no-node").build())));
    l.add(new Rpc("ListNodes", nodeReaders, s -> s.listNodes(ListNodesRequest.getDefaultInstance())));
    // the node role (ADR 0038): a node agent attests and is released keys, and can do nothing else
    l.add(new Rpc("GetAttestationChallenge", EnumSet.of(R.NODE),
        s -> s.getAttestationChallenge(GetAttestationChallengeRequest.newBuilder().setName("no-node").build())));
    l.add(new Rpc("AttestNode", EnumSet.of(R.NODE), s -> s.attestNode(AttestNodeRequest.newBuilder().setName("no-node").build())));
    l.add(new Rpc("ReleaseKey", EnumSet.of(R.NODE), s -> s.releaseKey(ReleaseKeyRequest.newBuilder().setNode("no-node")
        .setKey("alpha/enc").build())));
    // a malformed credential: allowed roles get INVALID_ARGUMENT CREDENTIAL_INVALID, the rest PERMISSION_DENIED
    l.add(new Rpc("ActivateAttestationCredential", EnumSet.of(R.ADMIN, R.AUDITOR), s -> s.activateAttestationCredential(
        ActivateAttestationCredentialRequest.newBuilder().setCredential(com.google.protobuf.ByteString.copyFromUtf8("x"))
            .build())));
    // use: user only
    l.add(new Rpc("Encrypt", USERS,
        s -> s.encrypt(EncryptRequest.newBuilder().setKey("alpha/enc").setPlaintext(data).build())));
    l.add(new Rpc("Decrypt", USERS, s -> s.decrypt(DecryptRequest.newBuilder().setKey("alpha/enc")
        .setCiphertext(keys(tokens.get(R.USER)).encrypt(EncryptRequest.newBuilder().setKey("alpha/enc")
            .setPlaintext(data).build()).getCiphertext()).build())));
    l.add(new Rpc("GenerateDataKey", USERS,
        s -> s.generateDataKey(GenerateDataKeyRequest.newBuilder().setKey("alpha/enc").build())));
    l.add(new Rpc("Sign", USERS, s -> s.sign(SignRequest.newBuilder().setKey("alpha/sig").setData(data).build())));
    l.add(new Rpc("Verify", USERS, s -> s.verify(VerifyRequest.newBuilder().setKey("alpha/sig").setVersion(1)
        .setData(data).setSignature(ByteString.copyFrom(new byte[64])).build())));
    l.add(new Rpc("AsymmetricDecrypt", USERS, s -> s.asymmetricDecrypt(AsymmetricDecryptRequest.newBuilder()
        .setKey("alpha/rsa").setVersion(1).setCiphertext(ByteString.copyFrom(new byte[256])).build())));
    l.add(new Rpc("MacSign", USERS, s -> s.macSign(MacSignRequest.newBuilder().setKey("alpha/mac").setData(data).build())));
    l.add(new Rpc("MacVerify", USERS, s -> s.macVerify(MacVerifyRequest.newBuilder().setKey("alpha/mac").setVersion(1)
        .setData(data).setMac(ByteString.copyFrom(new byte[32])).build())));
    // batches: the call answers OK, each item as its single call (issue 21, ADR 0033): the item's error is the verdict
    l.add(new Rpc("BatchEncrypt", USERS, s -> item(s.batchEncrypt(io.tpmkms.proto.key.v1.BatchEncryptRequest
        .newBuilder().addItems(EncryptRequest.newBuilder().setKey("alpha/enc").setPlaintext(data)).build())
        .getResults(0).getError())));
    l.add(new Rpc("BatchDecrypt", USERS, s -> item(s.batchDecrypt(io.tpmkms.proto.key.v1.BatchDecryptRequest
        .newBuilder().addItems(DecryptRequest.newBuilder().setKey("alpha/enc").setCiphertext(keys(tokens.get(R.USER))
            .encrypt(EncryptRequest.newBuilder().setKey("alpha/enc").setPlaintext(data).build()).getCiphertext()))
        .build()).getResults(0).getError())));
    l.add(new Rpc("BatchSign", USERS, s -> item(s.batchSign(io.tpmkms.proto.key.v1.BatchSignRequest.newBuilder()
        .addItems(SignRequest.newBuilder().setKey("alpha/sig").setData(data)).build()).getResults(0).getError())));
    l.add(new Rpc("BatchMacSign", USERS, s -> item(s.batchMacSign(io.tpmkms.proto.key.v1.BatchMacSignRequest
        .newBuilder().addItems(MacSignRequest.newBuilder().setKey("alpha/mac").setData(data)).build())
        .getResults(0).getError())));
    l.add(new Rpc("GenerateRandom", USERS,
        s -> s.generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(16).build())));
    // lifecycle: admin only
    l.add(new Rpc("CreateKey", ADMINS, s -> s.createKey(CreateKeyRequest.newBuilder().setNamespace("alpha")
        .setName("new-" + System.nanoTime()).setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build())));
    l.add(new Rpc("UpdateKey", ADMINS, s -> s.updateKey(UpdateKeyRequest.newBuilder().setKey("alpha/life")
        .addUpdateMask("labels").putLabels("team", "it").build())));
    l.add(new Rpc("RotateKey", ADMINS, s -> s.rotateKey(RotateKeyRequest.newBuilder().setKey("alpha/life").build())));
    l.add(new Rpc("SetPrimaryVersion", ADMINS,
        s -> s.setPrimaryVersion(SetPrimaryVersionRequest.newBuilder().setKey("alpha/life").setVersion(2).build())));
    l.add(new Rpc("DisableKeyVersion", ADMINS,
        s -> s.disableKeyVersion(DisableKeyVersionRequest.newBuilder().setKey("alpha/life").setVersion(1).build())));
    l.add(new Rpc("EnableKeyVersion", ADMINS,
        s -> s.enableKeyVersion(EnableKeyVersionRequest.newBuilder().setKey("alpha/life").setVersion(1).build())));
    l.add(new Rpc("ScheduleKeyVersionDestruction", ADMINS, s -> s.scheduleKeyVersionDestruction(
        ScheduleKeyVersionDestructionRequest.newBuilder().setKey("alpha/life").setVersion(1).build())));
    l.add(new Rpc("RestoreKeyVersion", ADMINS,
        s -> s.restoreKeyVersion(RestoreKeyVersionRequest.newBuilder().setKey("alpha/life").setVersion(1).build())));
    l.add(new Rpc("RevokeKeyVersion", ADMINS,
        s -> s.revokeKeyVersion(RevokeKeyVersionRequest.newBuilder().setKey("alpha/life").setVersion(1).build())));
    // import: admins make jobs and import; every role reads jobs
    l.add(new Rpc("CreateImportJob", IMPORTERS, s -> s.createImportJob(CreateImportJobRequest.newBuilder()
        .setNamespace("alpha").setJobId("job-" + System.nanoTime())
        .setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256).build())));
    l.add(new Rpc("GetImportJob", READERS,
        s -> s.getImportJob(GetImportJobRequest.newBuilder().setImportJob("alpha/job").build())));
    l.add(new Rpc("ListImportJobs", READERS,
        s -> s.listImportJobs(ListImportJobsRequest.newBuilder().setNamespace("alpha").build())));
    l.add(new Rpc("ImportKeyVersion", IMPORTERS, s -> s.importKeyVersion(ImportKeyVersionRequest.newBuilder()
        .setKey("alpha/imp").setImportJob("alpha/job").setAlgorithm(Algorithm.HMAC_SHA256)
        .setWrappedKey(wrappedHmacKey()).build())));
    // export: duplicators only (this deployment is SOFTWARE-only, so an allowed call is then refused
    // FAILED_PRECONDITION KEY_NOT_EXPORTABLE: authorization came first)
    l.add(new Rpc("ExportKeyVersion", DUPLICATORS, s -> s.exportKeyVersion(ExportKeyVersionRequest.newBuilder()
        .setKey("alpha/sig").setTarget(DuplicationTarget.getDefaultInstance()).build())));
    return l;
  }

  /** A batch item's outcome as a call's: its error thrown (so the matrix reads its code), or OK. */
  static Object item(com.google.rpc.Status error) {
    if (error.getCode() != 0) throw io.grpc.protobuf.StatusProto.toStatusRuntimeException(error);
    return error;
  }

  @Test
  @Order(1)
  void roleMatrix_everyRpcTimesEveryRole_allowedOrDeniedAsDocumented_deniedChangesNothing() throws Exception {
    List<Rpc> rpcs = rpcs();
    // every RPC of the service is in the matrix
    Set<String> declared = new java.util.TreeSet<>();
    KeyServiceGrpc.getServiceDescriptor().getMethods().forEach(m -> declared.add(m.getBareMethodName()));
    Set<String> covered = new java.util.TreeSet<>();
    rpcs.forEach(r -> covered.add(r.name()));
    assertEquals(declared, covered, "the matrix covers every KeyService RPC");

    List<String> wrong = new ArrayList<>();
    String before = stateOf("alpha/life");
    // everyone but admin first: their denied lifecycle calls must leave the key as it was
    for (R role : List.of(R.NOBODY, R.VIEWER, R.USER, R.DUPLICATOR, R.AUDITOR, R.NODE, R.ADMIN)) {
      if (role == R.ADMIN) assertEquals(before, stateOf("alpha/life"), "denied calls changed nothing");
      KeyServiceGrpc.KeyServiceBlockingStub stub = keys(tokens.get(role));
      for (Rpc rpc : rpcs) {
        Status.Code code = codeOf(() -> rpc.call().apply(stub));
        boolean denied = code == Status.Code.PERMISSION_DENIED;
        if (code == Status.Code.UNAUTHENTICATED || code == Status.Code.UNAVAILABLE) {
          wrong.add(role + " " + rpc.name() + ": " + code);
        } else if (rpc.allowed().contains(role) == denied) {
          wrong.add(role + " " + rpc.name() + ": expected " + (denied ? "allowed" : "denied") + ", got " + code);
        }
      }
    }
    assertTrue(wrong.isEmpty(), "role matrix mismatches:\n" + String.join("\n", wrong));
    assertNotEquals(before, stateOf("alpha/life"), "the admin's lifecycle calls did change the key");
    assertEquals(IMPORTERS.size(), keys(adminToken).listKeyVersions(ListKeyVersionsRequest.newBuilder()
        .setKey("alpha/imp").build()).getVersionsCount(), "one imported version per importer, none from the denied");

    // the denials are in the audit trail with their reason
    List<AuditEvent> events = outbox();
    AuditEvent denial = events.stream()
        .filter(e -> e.getPrincipal().startsWith(subjects.get(R.VIEWER)) && e.getOperation().endsWith("/RotateKey"))
        .findFirst().orElseThrow(() -> new AssertionError("no audit event for the viewer's RotateKey"));
    assertEquals(Decision.DENY, denial.getDecision());
    assertEquals("PERMISSION_DENIED", denial.getOutcome());
    assertTrue(denial.getDecisionReason().contains("default deny"), denial.getDecisionReason());
    AuditEvent allowed = events.stream()
        .filter(e -> e.getPrincipal().startsWith(subjects.get(R.USER)) && e.getOperation().endsWith("/Encrypt"))
        .findFirst().orElseThrow(() -> new AssertionError("no audit event for the user's Encrypt"));
    assertEquals(Decision.ALLOW, allowed.getDecision());
    assertTrue(allowed.getDecisionReason().contains("role binding"), allowed.getDecisionReason());
    // every export attempt is audited: the admin's denied, the duplicator's allowed and then refused
    AuditEvent adminExport = events.stream()
        .filter(e -> e.getPrincipal().startsWith(subjects.get(R.ADMIN)) && e.getOperation().endsWith("/ExportKeyVersion"))
        .findFirst().orElseThrow(() -> new AssertionError("no audit event for the admin's ExportKeyVersion"));
    assertEquals(Decision.DENY, adminExport.getDecision());
    AuditEvent dupExport = events.stream()
        .filter(e -> e.getPrincipal().startsWith(subjects.get(R.DUPLICATOR))
            && e.getOperation().endsWith("/ExportKeyVersion"))
        .findFirst().orElseThrow(() -> new AssertionError("no audit event for the duplicator's ExportKeyVersion"));
    assertEquals(Decision.ALLOW, dupExport.getDecision());
    assertEquals("FAILED_PRECONDITION", dupExport.getOutcome());
    assertEquals("alpha/sig", dupExport.getKey());
  }

  @Test
  @Order(2)
  void bindings_perNamespace_perKey_perGroup_giveNothingElsewhere() throws Exception {
    keys(adminToken).createKey(key("beta", "enc"));
    keys(adminToken).createKey(key("alpha", "other"));
    keycloak.createGroup(REALM, "/teams/blue");
    String nsUser = keycloak.createUser(REALM, "it-ns", "it-ns-pw", List.of(), List.of());
    String keyUser = keycloak.createUser(REALM, "it-key", "it-key-pw", List.of(), List.of());
    keycloak.createUser(REALM, "it-blue", "it-blue-pw", List.of(), List.of("/teams/blue"));
    bind(Subject.newBuilder().setUser(nsUser).build(), Role.USER, Resource.newBuilder().setNamespace("alpha").build());
    bind(Subject.newBuilder().setUser(keyUser).build(), Role.USER,
        Resource.newBuilder().setNamespace("alpha").setKeyName("enc").build());
    // a parent group's binding reaches members of its subgroups
    bind(Subject.newBuilder().setGroup("/teams").build(), Role.USER,
        Resource.newBuilder().setNamespace("beta").build());

    String ns = token("it-ns");
    assertEquals(Status.Code.OK, encrypt(ns, "alpha/enc"));
    assertEquals(Status.Code.OK, encrypt(ns, "alpha/other"));
    assertEquals(Status.Code.PERMISSION_DENIED, encrypt(ns, "beta/enc"), "namespace binding stays in its namespace");
    assertEquals(Status.Code.PERMISSION_DENIED,
        codeOf(() -> keys(ns).rotateKey(RotateKeyRequest.newBuilder().setKey("alpha/enc").build())),
        "a user binding gives no admin rights");
    String k = token("it-key");
    assertEquals(Status.Code.OK, encrypt(k, "alpha/enc"));
    assertEquals(Status.Code.PERMISSION_DENIED, encrypt(k, "alpha/other"), "key binding stays on its key");
    String blue = token("it-blue");
    assertEquals(Status.Code.OK, encrypt(blue, "beta/enc"));
    assertEquals(Status.Code.PERMISSION_DENIED, encrypt(blue, "alpha/enc"));
  }

  @Test
  @Order(3)
  void badTokens_areUnauthenticated_andReachNothing() throws Exception {
    GetKeyRequest get = GetKeyRequest.newBuilder().setKey("alpha/enc").build();
    // missing
    assertUnauthenticated(() -> KeyServiceGrpc.newBlockingStub(keyChannel).getKey(get), "TOKEN_MISSING");
    // tampered: one character of the payload changed, signature kept
    String good = tokens.get(R.VIEWER);
    String[] parts = good.split("\\.");
    char c = parts[1].charAt(10);
    parts[1] = parts[1].substring(0, 10) + (c == 'A' ? 'B' : 'A') + parts[1].substring(11);
    String tampered = String.join(".", parts);
    assertUnauthenticated(() -> keys(tampered).getKey(get), "TOKEN_INVALID");
    // garbage
    assertUnauthenticated(() -> keys("not-a-jwt").getKey(get), "TOKEN_INVALID");
    // wrong audience: the realm's built-in admin-cli client issues tokens without tpmkms audiences
    String adminCli = keycloak.passwordGrant(REALM, "admin-cli", null, "it-viewer", "it-viewer-pw").accessToken();
    assertFalse(Keycloak.claims(adminCli).path("aud").toString().contains("tpmkms-key-service"));
    assertUnauthenticated(() -> keys(adminCli).getKey(get), "TOKEN_INVALID");
    // another realm: same clients and audiences, different issuer and keys
    Path realm = Path.of("..").toAbsolutePath().normalize().resolve("deploy/keycloak/tpmkms-realm.json");
    keycloak.importRealm(realm, "elsewhere");
    keycloak.createUser("elsewhere", "it-viewer", "it-viewer-pw", List.of("tpmkms-viewer"), List.of());
    String other = keycloak.passwordGrant("elsewhere", CLI, null, "it-viewer", "it-viewer-pw").accessToken();
    assertTrue(Keycloak.claims(other).path("aud").toString().contains("tpmkms-key-service"));
    assertUnauthenticated(() -> keys(other).getKey(get), "TOKEN_INVALID");
    // expired: a client whose tokens live 4 s (whole seconds: valid for 3 s at least, time enough for one call
    // on a busy machine)
    keycloak.createClient(REALM, Map.of("clientId", "it-short", "publicClient", true,
        "directAccessGrantsEnabled", true, "attributes", Map.of("access.token.lifespan", "4"),
        "protocolMappers", List.of(Map.of("name", "aud", "protocol", "openid-connect",
            "protocolMapper", "oidc-audience-mapper", "config", Map.of(
                "included.custom.audience", "tpmkms-key-service", "access.token.claim", "true")))));
    String shortLived = keycloak.passwordGrant(REALM, "it-short", null, "it-viewer", "it-viewer-pw").accessToken();
    assertEquals(Status.Code.OK, codeOf(() -> keys(shortLived).getKey(get)), "valid while it lives");
    Thread.sleep(5_500);
    assertUnauthenticated(() -> keys(shortLived).getKey(get), "TOKEN_INVALID");
    // the policy service checks tokens the same way
    assertEquals(Status.Code.UNAUTHENTICATED, codeOf(() -> PolicyServiceGrpc.newBlockingStub(policyChannel)
        .whoAmI(io.tpmkms.proto.policy.v1.WhoAmIRequest.getDefaultInstance())));
  }

  @Test
  @Order(4)
  void policyChange_appliesWithinTheDocumentedBound() throws Exception {
    String user = tokens.get(R.USER);
    assertEquals(Status.Code.OK, encrypt(user, "alpha/enc"));
    String policy = "forbid(principal == Tpmkms::User::\"" + subjects.get(R.USER)
        + "\", action == Tpmkms::Action::\"Encrypt\", resource in Tpmkms::Namespace::\"alpha\");";
    var created = policies(adminToken).createPolicy(CreatePolicyRequest.newBuilder().setId("it-no-encrypt")
        .setDescription("no encryption for the IT user").setText(policy).build());
    long t0 = System.nanoTime();
    while (encrypt(user, "alpha/enc") == Status.Code.OK) {
      assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "the forbid policy never applied");
      Thread.sleep(100);
    }
    long appliedMs = (System.nanoTime() - t0) / 1_000_000;
    LOG.infof("forbid policy applied after %d ms (bound: cache %d ms + reload 500 ms)", appliedMs, CACHE_TTL_MS);
    // the bound plus generous slack for this shared machine; a change that never applies fails above
    assertTrue(appliedMs <= CACHE_TTL_MS + 500 + 6_000, "applied after " + appliedMs + " ms");
    policies(adminToken).deletePolicy(DeletePolicyRequest.newBuilder().setId("it-no-encrypt")
        .setExpectedVersion(created.getVersion()).build());
    t0 = System.nanoTime();
    while (encrypt(user, "alpha/enc") != Status.Code.OK) {
      assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "deleting the policy never applied");
      Thread.sleep(100);
    }
    // schema validation: a policy naming an action that does not exist is refused
    StatusRuntimeException bad = assertThrows(StatusRuntimeException.class, () -> policies(adminToken)
        .createPolicy(CreatePolicyRequest.newBuilder().setId("it-bad").setText(
            "permit(principal, action == Tpmkms::Action::\"Exfiltrate\", resource);").build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, bad.getStatus().getCode());
    // only admins manage policies
    assertEquals(Status.Code.PERMISSION_DENIED, codeOf(() -> policies(user).createPolicy(
        CreatePolicyRequest.newBuilder().setId("it-user").setText(policy).build())));
  }

  @Test
  @Order(5)
  void policyServiceStopped_keyServiceFailsClosed_andNothingHappens() throws Exception {
    policyService.kill9();
    try {
      Thread.sleep(CACHE_TTL_MS + 200); // remembered decisions expire
      String admin = adminToken;
      Status.Code code = codeOf(() -> keys(admin).createKey(key("alpha", "while-down")));
      assertEquals(Status.Code.UNAVAILABLE, code);
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> keys(admin).rotateKey(RotateKeyRequest.newBuilder().setKey("alpha/enc").build()));
      assertEquals("POLICY_UNAVAILABLE", reasonOf(e));
    } finally {
      policyService.restart();
    }
    Status.Code code = Status.Code.UNAVAILABLE;
    for (int i = 0; i < 100 && code == Status.Code.UNAVAILABLE; i++) {
      code = codeOf(() -> keys(tokens.get(R.VIEWER)).getKey(GetKeyRequest.newBuilder().setKey("alpha/while-down").build()));
      if (code == Status.Code.UNAVAILABLE) Thread.sleep(200);
    }
    assertEquals(Status.Code.NOT_FOUND, code, "the refused CreateKey created nothing");
    assertEquals(1, keys(tokens.get(R.VIEWER)).getKey(GetKeyRequest.newBuilder().setKey("alpha/enc").build())
        .getKey().getPrimaryVersion(), "the refused RotateKey rotated nothing");
  }

  // ---- helpers ----

  static String token(String username) throws Exception {
    return keycloak.passwordGrant(REALM, CLI, null, username, username + "-pw").accessToken();
  }

  static CreateKeyRequest key(String ns, String name) {
    return CreateKeyRequest.newBuilder().setNamespace(ns).setName(name).setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build();
  }

  static RoleBinding bind(Subject subject, Role role, Resource resource) {
    return policies(adminToken).createRoleBinding(CreateRoleBindingRequest.newBuilder().setSubject(subject)
        .setRole(role).setResource(resource).build());
  }

  static Status.Code encrypt(String token, String key) {
    return codeOf(() -> keys(token).encrypt(EncryptRequest.newBuilder().setKey(key)
        .setPlaintext(ByteString.copyFromUtf8("x")).build()));
  }

  /**
   * Anyone may ask what they themselves may do (requests without a principal: the admin console shows
   * what the signed-in person may not do, with the policy service's reason); asking about someone else
   * stays for the services and for those allowed Authorize.
   */
  @Test
  @Order(15)
  void anyone_mayAskWhatTheyMayDo_notWhatOthersMay() {
    var alphaEnc = Resource.newBuilder().setNamespace("alpha").setKeyName("enc").build();
    var r = policies(tokens.get(R.USER)).batchAuthorize(io.tpmkms.proto.policy.v1.BatchAuthorizeRequest.newBuilder()
        .addRequests(io.tpmkms.proto.policy.v1.AuthorizeRequest.newBuilder().setAction("Encrypt").setResource(alphaEnc))
        .addRequests(io.tpmkms.proto.policy.v1.AuthorizeRequest.newBuilder().setAction("RotateKey").setResource(alphaEnc))
        .build());
    assertEquals(io.tpmkms.proto.policy.v1.Decision.ALLOW, r.getResponses(0).getDecision(), r.toString());
    assertEquals(io.tpmkms.proto.policy.v1.Decision.DENY, r.getResponses(1).getDecision(), r.toString());
    assertFalse(r.getResponses(1).getReasonsList().isEmpty(), "a denial says why: " + r);
    var nobody = policies(tokens.get(R.NOBODY)).authorize(io.tpmkms.proto.policy.v1.AuthorizeRequest.newBuilder()
        .setAction("Encrypt").setResource(alphaEnc).build());
    assertEquals(io.tpmkms.proto.policy.v1.Decision.DENY, nobody.getDecision(), nobody.toString());
    var me = policies(tokens.get(R.USER)).whoAmI(io.tpmkms.proto.policy.v1.WhoAmIRequest.getDefaultInstance())
        .getPrincipal();
    assertEquals(Status.Code.PERMISSION_DENIED, codeOf(() -> policies(tokens.get(R.USER)).authorize(
        io.tpmkms.proto.policy.v1.AuthorizeRequest.newBuilder().setPrincipal(me.toBuilder().addRealmRoles("tpmkms-admin"))
            .setAction("RotateKey").setResource(alphaEnc).build())), "asking about another (or a forged self) is refused");
  }

  /**
   * Issue 18: the key service's authorization meters — decisions by outcome and source (the policy
   * service, then the cache within its TTL), the policy service's answer time — and no principal or
   * token among the labels.
   */
  @Test
  @Order(20)
  void metrics_countDecisionsBySource_withoutPrincipals() throws Exception {
    Thread.sleep(CACHE_TTL_MS + 100); // earlier tests' decisions expire
    var denyAsked = Map.of("decision", "deny", "source", "policy_service");
    var denyCached = Map.of("decision", "deny", "source", "cache");
    var allowAsked = Map.of("decision", "allow", "source", "policy_service");
    var allowCached = Map.of("decision", "allow", "source", "cache");
    io.tpmkms.testing.PrometheusScrape before = io.tpmkms.testing.PrometheusScrape.of(keyMetrics);
    KeyServiceGrpc.KeyServiceBlockingStub viewer = keys(tokens.get(R.VIEWER));
    for (int i = 0; i < 3; i++) { // asked once, then remembered
      assertEquals(Status.Code.PERMISSION_DENIED, codeOf(() -> viewer.rotateKey(
          RotateKeyRequest.newBuilder().setKey("alpha/life").build())));
    }
    for (int i = 0; i < 2; i++) {
      viewer.getKey(GetKeyRequest.newBuilder().setKey("alpha/life").build());
    }
    io.tpmkms.testing.PrometheusScrape after = io.tpmkms.testing.PrometheusScrape.of(keyMetrics);
    String d = "tpmkms_authz_decisions_total";
    // each decision is remembered for CACHE_TTL_MS: on a slow machine a later call may outlive it and ask again
    double dAsked = after.value(d, denyAsked) - before.value(d, denyAsked);
    double dCached = after.value(d, denyCached) - before.value(d, denyCached);
    double aAsked = after.value(d, allowAsked) - before.value(d, allowAsked);
    double aCached = after.value(d, allowCached) - before.value(d, allowCached);
    assertEquals(3.0, dAsked + dCached, "three denials counted");
    assertTrue(dAsked >= 1 && dCached >= 1, "deny asked once, then from the cache: " + dAsked + "/" + dCached);
    assertEquals(2.0, aAsked + aCached, "two allows counted");
    assertTrue(aAsked >= 1, "allow asked first: " + aAsked);
    String t = "tpmkms_authz_policy_duration_seconds_count";
    assertEquals(dAsked + aAsked, after.value(t, Map.of()) - before.value(t, Map.of()),
        "every Authorize round trip timed, no cached decision");
    var rotateDenied = Map.of("method", "tpmkms.key.v1.KeyService/RotateKey", "code", "PERMISSION_DENIED");
    String rpc = "tpmkms_rpc_server_duration_seconds_count";
    assertEquals(3.0, after.value(rpc, rotateDenied) - before.value(rpc, rotateDenied),
        "three denied RotateKey calls counted by status");
    for (String secret : List.of(subjects.get(R.VIEWER), "it-viewer", tokens.get(R.VIEWER))) {
      assertFalse(after.text().contains(secret), "a principal or token in the metrics");
    }
  }

  /**
   * Issue 18: the key service is not ready while the policy service is down (authorization fails
   * closed, so no call could be served), says why in its health answer, and is ready again once the
   * policy service is back.
   */
  @Test
  @Order(30)
  void readiness_followsThePolicyService() throws Exception {
    assertEquals("SERVING", keyHealth()[0]);
    policyService.kill9();
    String[] h = keyHealth();
    for (int i = 0; i < 60 && !h[0].equals("NOT_SERVING"); i++) {
      Thread.sleep(500);
      h = keyHealth();
    }
    assertEquals("NOT_SERVING", h[0], "not ready without the policy service");
    assertTrue(h[1] != null && h[1].contains("policy-service: the policy service at"), String.valueOf(h[1]));
    policyService.restart();
    for (int i = 0; i < 90 && !h[0].equals("SERVING"); i++) {
      Thread.sleep(500);
      h = keyHealth();
    }
    assertEquals("SERVING", h[0], "ready again: " + h[1]);
  }

  /** The key service's Health/Check (no token needed): status and the tpmkms-not-ready header. */
  static String[] keyHealth() {
    var headers = new java.util.concurrent.atomic.AtomicReference<Metadata>();
    var status = io.grpc.health.v1.HealthGrpc.newBlockingStub(keyChannel)
        .withInterceptors(io.grpc.stub.MetadataUtils.newCaptureMetadataInterceptor(headers,
            new java.util.concurrent.atomic.AtomicReference<>()))
        .withDeadlineAfter(5, java.util.concurrent.TimeUnit.SECONDS)
        .check(io.grpc.health.v1.HealthCheckRequest.newBuilder().build()).getStatus();
    String reason = headers.get() == null ? null
        : headers.get().get(Metadata.Key.of("tpmkms-not-ready", Metadata.ASCII_STRING_MARSHALLER));
    return new String[] {status.name(), reason};
  }

  static KeyServiceGrpc.KeyServiceBlockingStub keys(String token) {
    return KeyServiceGrpc.newBlockingStub(keyChannel).withCallCredentials(bearer(token))
        .withDeadlineAfter(30, java.util.concurrent.TimeUnit.SECONDS);
  }

  static PolicyServiceGrpc.PolicyServiceBlockingStub policies(String token) {
    return PolicyServiceGrpc.newBlockingStub(policyChannel).withCallCredentials(bearer(token))
        .withDeadlineAfter(30, java.util.concurrent.TimeUnit.SECONDS);
  }

  static CallCredentials bearer(String token) {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
        applier.apply(m);
      }
    };
  }

  static Status.Code codeOf(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  static void assertUnauthenticated(Runnable call, String reason) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode(), e.getStatus().toString());
    assertEquals(reason, reasonOf(e));
  }

  static String reasonOf(StatusRuntimeException e) {
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    if (st == null) return "";
    for (var any : st.getDetailsList()) {
      if (any.is(ErrorInfo.class)) {
        try {
          return any.unpack(ErrorInfo.class).getReason();
        } catch (com.google.protobuf.InvalidProtocolBufferException x) {
          return "";
        }
      }
    }
    return "";
  }

  /** The key's versions and their states, as the admin sees them. */
  static String stateOf(String key) {
    var versions = keys(adminToken).listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key)
        .setIncludeDestroyed(true).build());
    var k = keys(adminToken).getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey();
    StringBuilder b = new StringBuilder("primary=" + k.getPrimaryVersion() + " labels=" + k.getLabelsMap());
    versions.getVersionsList().forEach(v -> b.append(' ').append(v.getVersion()).append(':').append(v.getState()));
    return b.toString();
  }

  /**
   * Every event the key service wrote (no audit service here: events stay
   * where they were made durable): state changes in its outbox table, the rest
   * in its journal, read here from the documented file format (docs/audit.md:
   * segments of u32 length | u32 CRC-32C | serialized AuditEvent).
   */
  static List<AuditEvent> outbox() throws Exception {
    List<AuditEvent> out = new ArrayList<>();
    try (Connection c = keyDb.getPostgresDatabase().getConnection();
        ResultSet rs = c.createStatement().executeQuery("SELECT payload FROM audit_outbox ORDER BY id")) {
      while (rs.next()) out.add(AuditEvent.parseFrom(rs.getBytes(1)));
    }
    try (var segments = Files.list(dir.resolve("key").resolve("audit-journal"))) {
      for (Path seg : segments.filter(p -> p.getFileName().toString().startsWith("segment-")).sorted().toList()) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(Files.readAllBytes(seg));
        while (b.remaining() >= 8) {
          int len = b.getInt();
          int crc = b.getInt();
          if (len <= 0 || len > b.remaining()) break; // a record being written right now
          byte[] payload = new byte[len];
          b.get(payload);
          java.util.zip.CRC32C c = new java.util.zip.CRC32C();
          c.update(payload);
          if ((int) c.getValue() != crc) break;
          out.add(AuditEvent.parseFrom(payload));
        }
      }
    }
    return out;
  }
}

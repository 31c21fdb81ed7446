package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.proto.audit.v1.*;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.proto.policy.v1.WhoAmIRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who may append to and read the audit trail (ADR 0023), through the whole
 * real stack with authentication ON: the Keycloak distribution with the repo's
 * realm (one per run, {@link SharedKeycloak}), and the audit, policy and key
 * services as packaged processes, each on its own PostgreSQL, the key and
 * policy services forwarding their events to the audit service.
 *
 * <ul>
 *   <li>the audit authorization matrix: every AuditService RPC × user, admin,
 *       viewer, auditor, duplicator, the key service's service identity, no
 *       token and a garbage token, allowed or denied as docs/authorization.md
 *       says; every denial is in the chain as a DENY record and appends nothing;
 *   <li>forged appends: a user token, no token, and the key service's own
 *       identity claiming the policy service's events — refused, nothing appended;
 *   <li>reads are recorded after they read, with their filters;
 *   <li>a page token replayed with other filters is INVALID_ARGUMENT;
 *   <li>the policy service down: reads fail closed (UNAVAILABLE), nothing read;
 *   <li>calls refused for a missing or bad token are recorded by all three
 *       services, with the reason and never the token.
 * </ul>
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AuditAuthorizationIT {
  private static final String REALM = "tpmkms";
  private static final String CLI = "tpmkms-cli";
  private static final long CACHE_TTL_MS = 1_000;
  private static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);
  private static final String GARBAGE = "garbage-token-" + UUID.randomUUID();

  /** Who calls. */
  enum Who { USER, ADMIN, VIEWER, AUDITOR, DUPLICATOR, SERVICE, NO_TOKEN, GARBAGE_TOKEN }

  @TempDir static Path dir;
  static Keycloak keycloak;
  static ThreeServices stack;
  static ServiceProcess policyService;
  static ManagedChannel auditChannel;
  /** The collector all three services send their spans to (issue 18). */
  static io.tpmkms.testing.OtlpReceiver otlp;
  /** The key service's TPM. */
  static io.tpmkms.protection.tpm.Swtpm tpm;
  static ManagedChannel keyChannel;
  static ManagedChannel policyChannel;
  static final Map<Who, String> tokens = new LinkedHashMap<>();
  static final Map<Who, String> subjects = new LinkedHashMap<>();

  @BeforeAll
  static void start() throws Exception {
    keycloak = SharedKeycloak.get();
    otlp = io.tpmkms.testing.OtlpReceiver.start();
    tpm = io.tpmkms.protection.tpm.Swtpm.start();
    Map<String, String> auditEnv = new LinkedHashMap<>(tracing());
    auditEnv.put("TPMKMS_AUTHZ_CACHE_TTL", CACHE_TTL_MS + "ms");
    auditEnv.put("TPMKMS_AUDIT_CHECKPOINT_INTERVAL", "1S");
    Map<String, String> keyEnv = new LinkedHashMap<>(tracing());
    keyEnv.put("TPMKMS_BACKEND_TPM_TRANSPORT", "unix");
    keyEnv.put("TPMKMS_BACKEND_TPM_PATH", tpm.socket().toString());
    stack = ThreeServices.start(dir, keycloak, REALM, auditEnv, tracing(), keyEnv);
    policyService = stack.policy;
    int auditPort = stack.auditPort;
    int policyPort = stack.policyPort;
    int keyPort = stack.keyPort;

    auditChannel = SystemTls.channel(auditPort);
    keyChannel = SystemTls.channel(keyPort);
    policyChannel = SystemTls.channel(policyPort);

    for (Who w : List.of(Who.USER, Who.ADMIN, Who.VIEWER, Who.AUDITOR, Who.DUPLICATOR)) {
      String name = "aa-" + w.name().toLowerCase();
      subjects.put(w, keycloak.createUser(REALM, name, name + "-pw",
          List.of("tpmkms-" + w.name().toLowerCase()), List.of()));
      tokens.put(w, keycloak.passwordGrant(REALM, CLI, null, name, name + "-pw").accessToken());
    }
    String service = keycloak.clientCredentials(REALM, "tpmkms-key-service", "dev-only-key-service-secret")
        .accessToken();
    tokens.put(Who.SERVICE, service);
    subjects.put(Who.SERVICE, Keycloak.claims(service).path("sub").asText());
    tokens.put(Who.GARBAGE_TOKEN, GARBAGE);
  }

  @AfterAll
  static void stop() throws Exception {
    for (ManagedChannel c : new ManagedChannel[] {auditChannel, keyChannel, policyChannel}) {
      if (c != null) c.shutdownNow();
    }
    if (stack != null) stack.close();
    if (otlp != null) otlp.close();
    if (tpm != null) tpm.close();
  }

  // ---- the matrix ----

  static final Set<Who> AUDITORS = EnumSet.of(Who.AUDITOR);
  static final Set<Who> PRODUCERS = EnumSet.of(Who.SERVICE);

  /** One AuditService RPC, called with valid arguments, and who is documented to be allowed it. */
  record Call(String name, Set<Who> allowed, Function<AuditServiceGrpc.AuditServiceBlockingStub, Object> call) {}

  /** The principal each forged or legitimate matrix append claims, so the chain can be searched for it. */
  static String claimed(Who w) {
    return "matrix-append-by-" + w.name().toLowerCase();
  }

  static List<Call> calls(Who w) {
    List<Call> l = new ArrayList<>();
    l.add(new Call("AppendEvents", PRODUCERS, s -> s.appendEvents(AppendEventsRequest.newBuilder()
        .addEvents(event("key-service", claimed(w))).build())));
    l.add(new Call("QueryRecords", AUDITORS, s -> s.queryRecords(QueryRecordsRequest.newBuilder()
        .setKey("matrix/key").setPageSize(5).build())));
    l.add(new Call("VerifyChain", AUDITORS, s -> s.verifyChain(VerifyChainRequest.getDefaultInstance())));
    l.add(new Call("ExportRecords", AUDITORS, s -> {
      List<ExportRecordsChunk> chunks = new ArrayList<>();
      s.exportRecords(ExportRecordsRequest.newBuilder().setFromSequence(1).setToSequence(3).build())
          .forEachRemaining(chunks::add);
      return chunks;
    }));
    l.add(new Call("ListCheckpoints", AUDITORS,
        s -> s.listCheckpoints(ListCheckpointsRequest.newBuilder().setPageSize(2).build())));
    l.add(new Call("GetCheckpoint", AUDITORS, s -> s.getCheckpoint(GetCheckpointRequest.getDefaultInstance())));
    return l;
  }

  @Test
  @Order(1)
  void matrix_everyAuditRpcTimesEveryCaller_allowedOrDeniedAsDocumented_denialsRecordedAndChangeNothing()
      throws Exception {
    // a first record, so that a checkpoint exists for GetCheckpoint
    audit(Who.SERVICE, "warm-up").appendEvents(AppendEventsRequest.newBuilder()
        .addEvents(event("key-service", "warm-up")).build());
    long t0 = System.nanoTime();
    while (codeOf(() -> audit(Who.AUDITOR, "warm-up").getCheckpoint(GetCheckpointRequest.getDefaultInstance()))
        != Status.Code.OK) {
      assertTrue(System.nanoTime() - t0 < 30_000_000_000L, "no checkpoint within 30 s");
      Thread.sleep(200);
    }
    // every RPC of the service is in the matrix
    Set<String> declared = new java.util.TreeSet<>();
    AuditServiceGrpc.getServiceDescriptor().getMethods().forEach(m -> declared.add(m.getBareMethodName()));
    Set<String> covered = new java.util.TreeSet<>();
    calls(Who.USER).forEach(c -> covered.add(c.name()));
    assertEquals(declared, covered, "the matrix covers every AuditService RPC");

    List<String> wrong = new ArrayList<>();
    for (Who w : Who.values()) {
      for (Call c : calls(w)) {
        StatusRuntimeException e = failureOf(() -> c.call().apply(audit(w, requestId(w, c.name()))));
        Status.Code code = e == null ? Status.Code.OK : e.getStatus().getCode();
        String expected;
        String expectedReason;
        if (w == Who.NO_TOKEN) {
          expected = "UNAUTHENTICATED";
          expectedReason = "TOKEN_MISSING";
        } else if (w == Who.GARBAGE_TOKEN) {
          expected = "UNAUTHENTICATED";
          expectedReason = "TOKEN_INVALID";
        } else if (c.allowed().contains(w)) {
          expected = "OK";
          expectedReason = "";
        } else {
          expected = "PERMISSION_DENIED";
          expectedReason = c.name().equals("AppendEvents") ? "APPEND_NOT_ALLOWED" : "PERMISSION_DENIED";
        }
        String got = code.name();
        String reason = e == null ? "" : AuthorizationIT.reasonOf(e);
        if (!got.equals(expected) || !reason.equals(expectedReason)) {
          wrong.add(w + " " + c.name() + ": expected " + expected + " " + expectedReason + ", got " + got + " "
              + reason + (e == null ? "" : " (" + e.getStatus().getDescription() + ")"));
        }
      }
    }
    assertTrue(wrong.isEmpty(), "audit matrix mismatches:\n" + String.join("\n", wrong));

    // every denial is in the chain: a DENY record with the caller, the call and why; and no denied append
    // added its event. (Refusals for a bad token are written without holding up the answer: wait for them.)
    List<AuditRecord> all = awaitRecords(0, requestId(Who.GARBAGE_TOKEN, "GetCheckpoint"),
        requestId(Who.NO_TOKEN, "GetCheckpoint"));
    List<String> missing = new ArrayList<>();
    for (Who w : Who.values()) {
      for (Call c : calls(w)) {
        String rid = requestId(w, c.name());
        List<AuditRecord> mine = all.stream().filter(r -> r.getEvent().getRequestId().equals(rid)).toList();
        boolean denied = !c.allowed().contains(w);
        if (mine.size() != (c.name().equals("AppendEvents") && !denied ? 0 : 1)) {
          missing.add(w + " " + c.name() + ": " + mine.size() + " records of the call");
          continue;
        }
        if (mine.isEmpty()) continue;
        AuditEvent ev = mine.get(0).getEvent();
        String problem = null;
        if (!ev.getService().equals("audit-service") || !mine.get(0).getDeliveredBy().equals("audit-service")) {
          problem = "not the audit service's own record";
        } else if (!ev.getOperation().equals("tpmkms.audit.v1.AuditService/" + c.name())) {
          problem = "operation " + ev.getOperation();
        } else if (denied && ev.getDecision() != Decision.DENY) {
          problem = "decision " + ev.getDecision();
        } else if (!denied && ev.getDecision() != Decision.ALLOW) {
          problem = "decision " + ev.getDecision();
        } else if (w == Who.NO_TOKEN || w == Who.GARBAGE_TOKEN) {
          if (!ev.getPrincipal().equals("unauthenticated") || !ev.getOutcome().equals("UNAUTHENTICATED")
              || !ev.getOutcomeReason().equals(w == Who.NO_TOKEN ? "TOKEN_MISSING" : "TOKEN_INVALID")) {
            problem = ev.getPrincipal() + " " + ev.getOutcome() + " " + ev.getOutcomeReason();
          }
        } else if (!ev.getPrincipal().startsWith(subjects.get(w))) {
          problem = "principal " + ev.getPrincipal();
        } else if (denied && (!ev.getOutcome().equals("PERMISSION_DENIED") || ev.getDecisionReason().isEmpty())) {
          problem = ev.getOutcome() + " / " + ev.getDecisionReason();
        }
        if (problem != null) missing.add(w + " " + c.name() + ": " + problem);
      }
    }
    assertTrue(missing.isEmpty(), "denials not recorded as documented:\n" + String.join("\n", missing));
    for (Who w : Who.values()) {
      long forged = all.stream().filter(r -> r.getEvent().getPrincipal().equals(claimed(w))).count();
      assertEquals(w == Who.SERVICE ? 1 : 0, forged, w + "'s append is in the chain " + forged + " times");
    }
    AuditRecord appended = all.stream().filter(r -> r.getEvent().getPrincipal().equals(claimed(Who.SERVICE)))
        .findFirst().orElseThrow();
    assertEquals("tpmkms-key-service", appended.getDeliveredBy(), "the service says who delivered it");
    assertEquals(2, appended.getRecordVersion());
    // the denied query's record says what was asked
    AuditRecord deniedQuery = all.stream()
        .filter(r -> r.getEvent().getRequestId().equals(requestId(Who.ADMIN, "QueryRecords"))).findFirst().orElseThrow();
    assertTrue(deniedQuery.getEvent().getDetails().contains("key: \"matrix/key\""), deniedQuery.toString());
    assertTrue(deniedQuery.getEvent().getDecisionReason().contains("default deny"), deniedQuery.toString());
    // no token anywhere in the trail
    String text = all.toString();
    assertFalse(text.contains(GARBAGE), "the garbage token is in the trail");
    assertFalse(text.contains(tokens.get(Who.USER)), "a token is in the trail");
    VerifyChainResponse v = audit(Who.AUDITOR, "verify").verifyChain(VerifyChainRequest.getDefaultInstance());
    assertTrue(v.getValid(), v.getProblem());
  }

  @Test
  @Order(2)
  void forgedAppends_areRefused_nothingAppended_eachRecordedAsDenied() throws Exception {
    long head = head();
    AuditEvent backdated = event("key-service", "forger").toBuilder()
        .setOperation("tpmkms.key.v1.KeyService/Decrypt").setKey("payments/cards").setOutcome("OK")
        .setDecision(Decision.ALLOW).setTime(Timestamp.newBuilder().setSeconds(1_600_000_000L)).build();
    AppendEventsRequest forged = AppendEventsRequest.newBuilder().addEvents(backdated).build();
    // a user's token
    StatusRuntimeException user = assertThrows(StatusRuntimeException.class,
        () -> audit(Who.USER, "forge-user").appendEvents(forged));
    assertEquals(Status.Code.PERMISSION_DENIED, user.getStatus().getCode());
    assertEquals("APPEND_NOT_ALLOWED", AuthorizationIT.reasonOf(user));
    // no token
    StatusRuntimeException none = assertThrows(StatusRuntimeException.class,
        () -> audit(Who.NO_TOKEN, "forge-none").appendEvents(forged));
    assertEquals(Status.Code.UNAUTHENTICATED, none.getStatus().getCode());
    assertEquals("TOKEN_MISSING", AuthorizationIT.reasonOf(none));
    // the key service's own identity, claiming the policy service's events (one good event first: all or nothing)
    AppendEventsRequest otherOrigin = AppendEventsRequest.newBuilder()
        .addEvents(event("key-service", "origin-ok"))
        .addEvents(event("policy-service", "origin-forged")).build();
    StatusRuntimeException origin = assertThrows(StatusRuntimeException.class,
        () -> audit(Who.SERVICE, "forge-origin").appendEvents(otherOrigin));
    assertEquals(Status.Code.PERMISSION_DENIED, origin.getStatus().getCode());
    assertEquals("ORIGIN_MISMATCH", AuthorizationIT.reasonOf(origin));
    assertTrue(origin.getStatus().getDescription().contains("policy-service"), origin.getStatus().toString());

    List<AuditRecord> after = awaitRecords(head, "forge-none");
    assertEquals(List.of(), after.stream().filter(r -> Set.of("forger", "origin-ok", "origin-forged")
        .contains(r.getEvent().getPrincipal())).toList(), "nothing of a refused append is in the chain");
    for (String rid : List.of("forge-user", "forge-none", "forge-origin")) {
      AuditRecord r = after.stream().filter(x -> x.getEvent().getRequestId().equals(rid)).findFirst()
          .orElseThrow(() -> new AssertionError("no record of the refused append " + rid));
      assertEquals(Decision.DENY, r.getEvent().getDecision(), r.toString());
      assertEquals("tpmkms.audit.v1.AuditService/AppendEvents", r.getEvent().getOperation());
      // what was tried (refused by authentication: before anything was read of the request)
      if (!rid.equals("forge-none")) assertTrue(r.getEvent().getDetails().contains("events of"), r.toString());
    }
    AuditRecord byKeyService = after.stream().filter(x -> x.getEvent().getRequestId().equals("forge-origin"))
        .findFirst().orElseThrow();
    assertTrue(byKeyService.getEvent().getClient().startsWith("tpmkms-key-service"), byKeyService.toString());
    assertTrue(byKeyService.getEvent().getDecisionReason().contains("claims service policy-service"),
        byKeyService.toString());
    assertEquals("ORIGIN_MISMATCH", byKeyService.getEvent().getOutcomeReason());
  }

  @Test
  @Order(3)
  void reads_areRecordedAfterTheyRead_withTheirFilters() throws Exception {
    QueryRecordsResponse page = audit(Who.AUDITOR, "read-me").queryRecords(QueryRecordsRequest.newBuilder()
        .setOperation("tpmkms.audit.v1.AuditService/QueryRecords").setPageSize(1000).build());
    assertTrue(page.getRecordsList().stream().noneMatch(r -> r.getEvent().getRequestId().equals("read-me")),
        "a query never sees its own record");
    AuditRecord own = allRecords().stream().filter(r -> r.getEvent().getRequestId().equals("read-me"))
        .findFirst().orElseThrow(() -> new AssertionError("the query was not recorded"));
    assertTrue(own.getEvent().getPrincipal().startsWith(subjects.get(Who.AUDITOR)), own.toString());
    assertEquals(Decision.ALLOW, own.getEvent().getDecision());
    assertEquals("OK", own.getEvent().getOutcome());
    assertTrue(own.getEvent().getDetails().contains("operation: \"tpmkms.audit.v1.AuditService/QueryRecords\""),
        own.getEvent().getDetails());
    assertTrue(own.getEvent().getDecisionReason().contains("role binding"), own.toString());
  }

  @Test
  @Order(4)
  void pageToken_replayedWithOtherFilters_isInvalidArgument() {
    var auditor = audit(Who.AUDITOR, "paging");
    QueryRecordsResponse first = auditor.queryRecords(QueryRecordsRequest.newBuilder()
        .setOutcome("PERMISSION_DENIED").setPageSize(1).build());
    assertFalse(first.getNextPageToken().isEmpty(), "more than one denial: a next page");
    // the same query goes on
    auditor.queryRecords(QueryRecordsRequest.newBuilder().setOutcome("PERMISSION_DENIED").setPageSize(1)
        .setPageToken(first.getNextPageToken()).build());
    // other filters with that token: refused, nothing read
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> auditor.queryRecords(
        QueryRecordsRequest.newBuilder().setOutcome("OK").setPageSize(1).setPageToken(first.getNextPageToken())
            .build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertEquals("INVALID_PAGE_TOKEN", AuthorizationIT.reasonOf(e));
    assertTrue(e.getStatus().getDescription().contains("these filters"), e.getStatus().toString());
  }

  @Test
  @Order(5)
  void refusedForMissingOrBadToken_recordedByAllThreeServices_withoutTheToken() throws Exception {
    long head = head();
    String marker = "refused-" + UUID.randomUUID();
    assertEquals(Status.Code.UNAUTHENTICATED, codeOf(() -> withRequestId(KeyServiceGrpc.newBlockingStub(keyChannel),
        marker + "-key-none").encrypt(EncryptRequest.newBuilder().setKey("a/b")
        .setPlaintext(ByteString.copyFromUtf8("x")).build())));
    assertEquals(Status.Code.UNAUTHENTICATED, codeOf(() -> withRequestId(KeyServiceGrpc.newBlockingStub(keyChannel),
        marker + "-key-garbage").withCallCredentials(bearer(GARBAGE)).encrypt(EncryptRequest.newBuilder()
        .setKey("a/b").setPlaintext(ByteString.copyFromUtf8("x")).build())));
    assertEquals(Status.Code.UNAUTHENTICATED, codeOf(() -> withRequestId(
        PolicyServiceGrpc.newBlockingStub(policyChannel), marker + "-policy-none")
        .whoAmI(WhoAmIRequest.getDefaultInstance())));
    assertEquals(Status.Code.UNAUTHENTICATED, codeOf(() -> withRequestId(
        PolicyServiceGrpc.newBlockingStub(policyChannel), marker + "-policy-garbage").withCallCredentials(bearer(GARBAGE))
        .whoAmI(WhoAmIRequest.getDefaultInstance())));
    assertEquals(Status.Code.UNAUTHENTICATED, codeOf(() -> audit(Who.GARBAGE_TOKEN, marker + "-audit-garbage")
        .verifyChain(VerifyChainRequest.getDefaultInstance())));
    Map<String, String[]> expected = Map.of(
        marker + "-key-none", new String[] {"key-service", "TOKEN_MISSING", "KeyService/Encrypt"},
        marker + "-key-garbage", new String[] {"key-service", "TOKEN_INVALID", "KeyService/Encrypt"},
        marker + "-policy-none", new String[] {"policy-service", "TOKEN_MISSING", "PolicyService/WhoAmI"},
        marker + "-policy-garbage", new String[] {"policy-service", "TOKEN_INVALID", "PolicyService/WhoAmI"},
        marker + "-audit-garbage", new String[] {"audit-service", "TOKEN_INVALID", "AuditService/VerifyChain"});
    // forwarded within about 50 ms (journal) or the outbox poll; allow for a busy machine
    long t0 = System.nanoTime();
    List<AuditRecord> found;
    while (true) {
      found = recordsAfter(head).stream().filter(r -> expected.containsKey(r.getEvent().getRequestId())).toList();
      if (found.size() >= expected.size() || System.nanoTime() - t0 > 30_000_000_000L) break;
      Thread.sleep(250);
    }
    assertEquals(expected.keySet(), found.stream().map(r -> r.getEvent().getRequestId())
        .collect(java.util.stream.Collectors.toSet()), "every refusal is in the chain once");
    for (AuditRecord r : found) {
      String[] x = expected.get(r.getEvent().getRequestId());
      AuditEvent e = r.getEvent();
      assertEquals(x[0], e.getService(), r.toString());
      assertEquals("unauthenticated", e.getPrincipal(), r.toString());
      assertEquals(Decision.DENY, e.getDecision(), r.toString());
      assertEquals("UNAUTHENTICATED", e.getOutcome(), r.toString());
      assertEquals(x[1], e.getOutcomeReason(), r.toString());
      assertTrue(e.getOperation().endsWith(x[2]), r.toString());
      assertFalse(e.getDecisionReason().isEmpty(), r.toString());
      assertFalse(r.toString().contains(GARBAGE), "the token is in the trail: " + r);
      // each producer delivered its own; the audit service wrote its own
      assertEquals(x[0].equals("audit-service") ? "audit-service" : "tpmkms-" + x[0], r.getDeliveredBy());
    }
  }

  /** Every service sends its spans to the test's collector, quickly. */
  static Map<String, String> tracing() {
    return Map.of("TPMKMS_TRACING_ENDPOINT", otlp.endpoint(), "TPMKMS_TRACING_EXPORT_DELAY", "200ms");
  }

  /**
   * Issue 18: one call is one trace across the three services. A user's first Encrypt with a TPM key,
   * sent with the caller's own {@code traceparent}: the key service's SERVER span continues it; under
   * it the {@code authorize} span, whose CLIENT call is the policy service's SERVER span; the TPM
   * commands the call ran; and the audit service's {@code audit.append}, which says where the call's
   * event landed in the chain (delivered after the call answered, carried by the event). No plaintext, token or principal
   * in anything the collector received, nor in the services' logs.
   */
  @Test
  @Order(6)
  void trace_oneCallIsOneTraceAcrossTheThreeServices_withoutSecrets() throws Exception {
    String name = "traced-" + UUID.randomUUID().toString().substring(0, 8);
    KeyServiceGrpc.newBlockingStub(keyChannel).withCallCredentials(bearer(tokens.get(Who.ADMIN)))
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .createKey(io.tpmkms.proto.key.v1.CreateKeyRequest.newBuilder().setNamespace("tracing").setName(name)
            .setPurpose(io.tpmkms.proto.key.v1.KeyPurpose.ENCRYPT_DECRYPT)
            .setProtectionLevel(io.tpmkms.proto.key.v1.ProtectionLevel.TPM).build());
    String traceId = java.util.HexFormat.of().formatHex(java.security.SecureRandom.getSeed(16));
    String callerSpan = "0123456789abcdef";
    Metadata headers = new Metadata();
    headers.put(Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER),
        "00-" + traceId + "-" + callerSpan + "-01");
    String plaintext = "plaintext-never-in-a-span-" + UUID.randomUUID();
    var encrypted = KeyServiceGrpc.newBlockingStub(keyChannel).withCallCredentials(bearer(tokens.get(Who.USER)))
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .encrypt(EncryptRequest.newBuilder().setKey("tracing/" + name)
            .setPlaintext(ByteString.copyFromUtf8(plaintext)).build());
    assertFalse(encrypted.getCiphertext().isEmpty());

    var encrypt = otlp.await(sp -> sp.traceId().equals(traceId) && sp.name().equals("tpmkms.key.v1.KeyService/Encrypt"),
        java.time.Duration.ofSeconds(30));
    assertTrue(encrypt != null, "the key service's span of the call: " + otlp.spans());
    assertEquals("tpmkms-key-service", encrypt.service());
    assertEquals(callerSpan, encrypt.parentSpanId(), "the caller's trace is continued");
    assertEquals(2, encrypt.kind(), "SERVER");
    assertEquals("0", encrypt.attributes().get("rpc.grpc.status_code"));
    var authorize = awaitChild(encrypt, "authorize", "tpmkms-key-service");
    assertEquals("allow", authorize.attributes().get("tpmkms.authz.decision"), authorize.toString());
    assertEquals("policy_service", authorize.attributes().get("tpmkms.authz.source"), authorize.toString());
    var askClient = awaitChild(authorize, "tpmkms.policy.v1.PolicyService/Authorize", "tpmkms-key-service");
    assertEquals(3, askClient.kind(), "CLIENT");
    var askServer = awaitChild(askClient, "tpmkms.policy.v1.PolicyService/Authorize", "tpmkms-policy-service");
    assertEquals(2, askServer.kind(), "SERVER");
    var append = awaitChild(encrypt, "audit.append", "tpmkms-audit-service");
    assertTrue(Long.parseLong(append.attributes().get("tpmkms.audit.sequence")) > 0, append.toString());
    // the TPM commands the call ran (a TPM AES key: its data key derived by TPM2_HMAC under the call)
    long t0 = System.nanoTime();
    List<io.tpmkms.testing.OtlpReceiver.Span> tpmSpans;
    do {
      tpmSpans = otlp.trace(traceId).stream().filter(sp -> sp.attributes().containsKey("tpm.command")).toList();
      if (!tpmSpans.isEmpty()) break;
      Thread.sleep(100);
    } while (System.nanoTime() - t0 < 10_000_000_000L);
    assertFalse(tpmSpans.isEmpty(), "TPM command spans in the call's trace: " + otlp.trace(traceId));
    for (var sp : tpmSpans) {
      assertEquals(encrypt.spanId(), sp.parentSpanId(), sp.toString());
      assertEquals("OK", sp.attributes().get("tpm.outcome"), sp.toString());
      assertEquals("TPM2_" + sp.attributes().get("tpm.command"), sp.name(), sp.toString());
      assertTrue(sp.endNanos() >= sp.startNanos() && sp.startNanos() >= encrypt.startNanos()
          && sp.endNanos() <= encrypt.endNanos(), "within the call: " + sp);
    }

    // nothing secret in what the collector got, nor in the logs
    String b64 = java.util.Base64.getEncoder().encodeToString(plaintext.getBytes(StandardCharsets.UTF_8));
    List<String> secrets = new ArrayList<>(List.of(plaintext, b64, GARBAGE,
        subjects.get(Who.USER), subjects.get(Who.ADMIN), "aa-user", "aa-admin"));
    for (Who w : List.of(Who.USER, Who.ADMIN, Who.SERVICE)) {
      String token = tokens.get(w);
      secrets.add(token);
      secrets.add(token.substring(token.lastIndexOf('.') + 1)); // the signature alone
    }
    for (byte[] body : otlp.bodies()) {
      String text = new String(body, StandardCharsets.ISO_8859_1);
      for (String secret : secrets) assertFalse(text.contains(secret), "a secret in an exported span");
    }
    for (String log : List.of("key.log", "policy.log", "audit.log")) {
      String text = Files.readString(dir.resolve(log), StandardCharsets.ISO_8859_1);
      for (String secret : List.of(plaintext, b64, tokens.get(Who.USER), tokens.get(Who.ADMIN))) {
        assertFalse(text.contains(secret), "a plaintext or token in " + log);
      }
    }
  }

  /** The span named {@code name} of {@code service} whose parent is {@code parent} (waits up to 30 s). */
  static io.tpmkms.testing.OtlpReceiver.Span awaitChild(io.tpmkms.testing.OtlpReceiver.Span parent, String name,
      String service) throws InterruptedException {
    var child = otlp.await(sp -> sp.traceId().equals(parent.traceId()) && sp.parentSpanId().equals(parent.spanId())
        && sp.name().equals(name) && sp.service().equals(service), java.time.Duration.ofSeconds(30));
    assertTrue(child != null, name + " of " + service + " under " + parent + " in " + otlp.trace(parent.traceId()));
    return child;
  }

  @Test
  @Order(7)
  void policyServiceDown_readsFailClosed_nothingRead() throws Exception {
    policyService.kill9();
    try {
      Thread.sleep(CACHE_TTL_MS + 200); // remembered decisions expire
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> audit(Who.AUDITOR, "down")
          .queryRecords(QueryRecordsRequest.getDefaultInstance()));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
      assertEquals("POLICY_UNAVAILABLE", AuthorizationIT.reasonOf(e));
      StatusRuntimeException x = assertThrows(StatusRuntimeException.class, () -> {
        audit(Who.AUDITOR, "down-export").exportRecords(ExportRecordsRequest.getDefaultInstance())
            .forEachRemaining(c -> { throw new AssertionError("a chunk was sent while the policy service was down"); });
      });
      assertEquals(Status.Code.UNAVAILABLE, x.getStatus().getCode());
      // appends need no policy decision: the producers keep delivering
      audit(Who.SERVICE, "down-append").appendEvents(AppendEventsRequest.newBuilder()
          .addEvents(event("key-service", "while-policy-down")).build());
    } finally {
      policyService.restart();
    }
    long t0 = System.nanoTime();
    Status.Code code = Status.Code.UNAVAILABLE;
    while (code == Status.Code.UNAVAILABLE && System.nanoTime() - t0 < 60_000_000_000L) {
      code = codeOf(() -> audit(Who.AUDITOR, "up-again").verifyChain(VerifyChainRequest.getDefaultInstance()));
      if (code == Status.Code.UNAVAILABLE) Thread.sleep(250);
    }
    assertEquals(Status.Code.OK, code);
    AuditRecord refused = allRecords().stream().filter(r -> r.getEvent().getRequestId().equals("down"))
        .findFirst().orElseThrow(() -> new AssertionError("the refused read is not in the chain"));
    assertEquals("UNAVAILABLE", refused.getEvent().getOutcome());
    assertEquals("POLICY_UNAVAILABLE", refused.getEvent().getOutcomeReason());
    assertNotEquals(Decision.ALLOW, refused.getEvent().getDecision());
  }

  // ---- helpers ----

  static AuditEvent event(String service, String principal) {
    return AuditEvent.newBuilder().setEventId(UUID.randomUUID().toString()).setService(service)
        .setPrincipal(principal).setOperation("tpmkms.key.v1.KeyService/Encrypt").setDecision(Decision.ALLOW)
        .setOutcome("OK").setRequestId("ev-" + principal).build();
  }

  static String requestId(Who w, String rpc) {
    return "matrix-" + w.name().toLowerCase() + "-" + rpc;
  }

  static <S extends AbstractStub<S>> S withRequestId(S stub, String requestId) {
    Metadata m = new Metadata();
    m.put(REQUEST_ID, requestId);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m))
        .withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  static AuditServiceGrpc.AuditServiceBlockingStub audit(Who w, String requestId) {
    var stub = withRequestId(AuditServiceGrpc.newBlockingStub(auditChannel), requestId);
    String token = tokens.get(w);
    return token == null ? stub : stub.withCallCredentials(bearer(token));
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
    StatusRuntimeException e = failureOf(() -> {
      call.run();
      return null;
    });
    return e == null ? Status.Code.OK : e.getStatus().getCode();
  }

  static StatusRuntimeException failureOf(java.util.concurrent.Callable<Object> call) {
    try {
      call.call();
      return null;
    } catch (StatusRuntimeException e) {
      return e;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The chain head as the auditor sees it (this read is itself recorded afterwards). */
  static long head() {
    return audit(Who.AUDITOR, "head").verifyChain(VerifyChainRequest.getDefaultInstance()).getHeadSequence();
  }

  /** The records after {@code after} once those of the given request ids are there (at most 30 s). */
  static List<AuditRecord> awaitRecords(long after, String... requestIds) throws InterruptedException {
    long t0 = System.nanoTime();
    while (true) {
      List<AuditRecord> records = recordsAfter(after);
      Set<String> ids = new java.util.HashSet<>();
      records.forEach(r -> ids.add(r.getEvent().getRequestId()));
      if (ids.containsAll(List.of(requestIds)) || System.nanoTime() - t0 > 30_000_000_000L) return records;
      Thread.sleep(100);
    }
  }

  static List<AuditRecord> allRecords() {
    return recordsAfter(0);
  }

  /** Every record after {@code after}, read by the auditor (the export: no page tokens to follow). */
  static List<AuditRecord> recordsAfter(long after) {
    List<AuditRecord> out = new ArrayList<>();
    StringBuilder jsonl = new StringBuilder();
    audit(Who.AUDITOR, "read-all").exportRecords(ExportRecordsRequest.newBuilder().setFromSequence(after + 1).build())
        .forEachRemaining(c -> jsonl.append(c.getJsonl().toString(StandardCharsets.UTF_8)));
    for (String line : jsonl.toString().split("\n")) {
      if (line.isBlank()) continue;
      out.add(fromJson(line));
    }
    return out;
  }

  private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
      new com.fasterxml.jackson.databind.ObjectMapper();

  /** One export line back into a record (docs/audit.md's fields). */
  static AuditRecord fromJson(String line) {
    try {
      var n = JSON.readTree(line);
      AuditEvent e = AuditEvent.newBuilder().setEventId(n.path("event_id").asText())
          .setTime(Timestamp.newBuilder().setSeconds(n.path("time_seconds").asLong())
              .setNanos(n.path("time_nanos").asInt()))
          .setService(n.path("service").asText()).setPrincipal(n.path("principal").asText())
          .setClient(n.path("client").asText()).setOperation(n.path("operation").asText())
          .setKey(n.path("key").asText()).setKeyVersion(n.path("key_version").asInt())
          .setDecisionValue(n.path("decision_number").asInt()).setDecisionReason(n.path("decision_reason").asText())
          .setOutcome(n.path("outcome").asText()).setOutcomeReason(n.path("outcome_reason").asText())
          .setRequestId(n.path("request_id").asText()).setDetails(n.path("details").asText()).build();
      return AuditRecord.newBuilder().setSequence(n.path("sequence").asLong()).setEvent(e)
          .setDeliveredBy(n.path("delivered_by").asText()).setRecordVersion(n.path("record_version").asInt())
          .build();
    } catch (java.io.IOException x) {
      throw new IllegalStateException("not an export line: " + line, x);
    }
  }
}

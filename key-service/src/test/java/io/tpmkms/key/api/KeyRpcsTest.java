package io.tpmkms.key.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.Message;
import io.tpmkms.platform.rpc.Placement;
import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.testing.RpcTables;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The key service's RPC table against its descriptor, and against what the
 * service did before the table existed: the audit key, secret fields and key
 * version that field-name lookups gave at run time (kept here, as the
 * reference, for every RPC of the service) must equal what the typed
 * declarations give — for a filled-in request, a filled-in response and a
 * failed call.
 */
class KeyRpcsTest {
  @Test
  void everyMethodDeclared_secretsExist_everyBytesFieldClassified() {
    RpcTables.assertComplete(KeyRpcs.TABLE, Set.of(
        "DecryptRequest.ciphertext", "DecryptRequest.additional_authenticated_data",
        "EncryptRequest.additional_authenticated_data", "GenerateDataKeyRequest.additional_authenticated_data",
        "VerifyRequest.signature", "AsymmetricDecryptRequest.ciphertext", "MacVerifyRequest.mac",
        "GetKeyAttestationRequest.nonce", "ImportKeyVersionRequest.wrapped_key",
        "ActivateAttestationCredentialRequest.credential", // encrypted to the EK: only the TPM reads it
        // nodes: public TPM structures, certificates, the challenge's nonce, a quote and its event log
        "EnrollNodeRequest.ek_public", "EnrollNodeRequest.ek_certificate", "EnrollNodeRequest.ek_intermediates",
        "EnrollNodeRequest.ak_public", "EnrollNodeRequest.golden_values", "AttestNodeRequest.nonce",
        "AttestNodeRequest.quote", "AttestNodeRequest.signature", "AttestNodeRequest.event_log",
        "ReleaseKeyRequest.additional_authenticated_data"));
  }

  @Test
  void secretFields_areThoseTheDigestAlwaysLeftOut() {
    for (Rpc<?, ?> rpc : KeyRpcs.TABLE.rpcs()) {
      Set<String> legacy = rpc.requestType().getFields().stream().map(FieldDescriptor::getName)
          .filter(Set.of("plaintext", "data", "digest", "transfer_auth")::contains) // transfer_auth: issue 14
          .collect(Collectors.toCollection(TreeSet::new));
      if (rpc.method().getBareMethodName().equals("ActivateNode")) legacy.add("secret"); // ADR 0038
      Set<String> declared = Arrays.stream(rpc.secretFields()).map(FieldDescriptor::getName)
          .collect(Collectors.toCollection(TreeSet::new));
      assertEquals(legacy, declared, rpc.fullName());
    }
  }

  @Test
  void auditKeyAndVersion_asTheFieldNameLookupsGaveThem() throws Exception {
    for (Rpc<?, ?> rpc : KeyRpcs.TABLE.rpcs()) {
      Message request = parse(rpc, true, filled(rpc.requestType()));
      Message response = parse(rpc, false, filled(rpc.responseType()));
      assertEquals(legacyKey(request), RpcTables.target(rpc, request).auditKey(), rpc + " audit key");
      assertEquals(legacyVersion(response, request), RpcTables.version(rpc, request, response),
          rpc + " version of a success");
      assertEquals(legacyVersion(null, request), RpcTables.version(rpc, request, null), rpc + " version of a failure");
    }
  }

  @Test
  void placements_asTheServiceRanThem() {
    Map<String, Placement> expected = Map.ofEntries(
        Map.entry("Encrypt", Placement.KEY_USE_LIGHT), Map.entry("Decrypt", Placement.KEY_USE_LIGHT),
        Map.entry("GenerateDataKey", Placement.KEY_USE_LIGHT), Map.entry("GetPublicKey", Placement.KEY_USE_LIGHT),
        Map.entry("MacSign", Placement.KEY_USE_LIGHT), Map.entry("MacVerify", Placement.KEY_USE_LIGHT),
        Map.entry("Sign", Placement.KEY_USE_HEAVY), Map.entry("AsymmetricDecrypt", Placement.KEY_USE_HEAVY));
    for (Rpc<?, ?> rpc : KeyRpcs.TABLE.rpcs()) {
      assertEquals(expected.getOrDefault(rpc.method().getBareMethodName(), Placement.WORKER), rpc.placement(),
          rpc.fullName());
      assertEquals(rpc.method().getBareMethodName(), rpc.action(), "the policy action is the RPC's name");
    }
  }

  @Test
  void batches_areOfTheirSingleCall() {
    Set<String> batches = new TreeSet<>();
    for (Rpc<?, ?> rpc : KeyRpcs.TABLE.rpcs()) {
      if (rpc.batch() == null) {
        assertFalse(rpc.method().getBareMethodName().startsWith("Batch"), rpc + " is not declared a batch");
        continue;
      }
      batches.add(rpc.method().getBareMethodName());
      assertEquals("Batch" + rpc.batch().item().method().getBareMethodName(), rpc.method().getBareMethodName());
      assertEquals(KeyRpcs.MAX_BATCH_ITEMS, rpc.batch().max());
      assertEquals("items", rpc.batch().field().getName());
      assertSame(rpc.batch().item(), KeyRpcs.TABLE.find(rpc.batch().item().fullName()), "the table's own declaration");
    }
    assertEquals(Set.of("BatchDecrypt", "BatchEncrypt", "BatchMacSign", "BatchSign"), batches);
  }

  // ---- the run-time lookups the declarations replace (Dispatch.versionOf, CallInfo's shapes) -----

  private static String legacyKey(Message request) {
    Descriptor d = request.getDescriptorForType();
    // import jobs (issue 12, no legacy lookup): the audit resource is "namespace/importJobs/job_id"
    FieldDescriptor jobId = d.findFieldByName("job_id");
    if (jobId != null) return request.getField(d.findFieldByName("namespace")) + "/importJobs/" + request.getField(jobId);
    FieldDescriptor job = d.findFieldByName("import_job");
    if (job != null && d.findFieldByName("key") == null) {
      String name = (String) request.getField(job);
      int slash = name.indexOf('/');
      return slash < 0 ? name : name.substring(0, slash) + "/importJobs/" + name.substring(slash + 1);
    }
    if (d.getName().equals("ListImportJobsRequest")) return request.getField(d.findFieldByName("namespace")) + "/importJobs/";
    // nodes (ADR 0038, no legacy lookup): "node:<name>"; ReleaseKey is about its key
    if (d.getName().endsWith("NodeRequest") || d.getName().equals("GetAttestationChallengeRequest")) {
      return "node:" + request.getField(d.findFieldByName("name"));
    }
    FieldDescriptor key = d.findFieldByName("key");
    if (key != null && key.getType() == FieldDescriptor.Type.STRING && !key.isRepeated()) {
      return (String) request.getField(key);
    }
    FieldDescriptor ns = d.findFieldByName("namespace");
    FieldDescriptor name = d.findFieldByName("name");
    if (ns != null && name != null) return request.getField(ns) + "/" + request.getField(name);
    return "";
  }

  private static int legacyVersion(Message response, Message request) {
    if (response != null) {
      FieldDescriptor v = response.getDescriptorForType().findFieldByName("version");
      if (v != null && v.getType() == FieldDescriptor.Type.UINT32) return (Integer) response.getField(v);
      if (v != null && v.getType() == FieldDescriptor.Type.MESSAGE) {
        Message m = (Message) response.getField(v);
        FieldDescriptor n = m.getDescriptorForType().findFieldByName("version");
        if (n != null && n.getType() == FieldDescriptor.Type.UINT32) return (Integer) m.getField(n);
      }
      FieldDescriptor k = response.getDescriptorForType().findFieldByName("key");
      if (k != null && k.getType() == FieldDescriptor.Type.MESSAGE) {
        Message m = (Message) response.getField(k);
        FieldDescriptor p = m.getDescriptorForType().findFieldByName("primary_version");
        if (p != null) return (Integer) m.getField(p);
      }
    }
    FieldDescriptor rv = request.getDescriptorForType().findFieldByName("version");
    if (rv != null && rv.getType() == FieldDescriptor.Type.UINT32) return (Integer) request.getField(rv);
    return 0;
  }

  // ---- messages with every field set to a value of its own ---------------------------------------

  private static int counter = 10;

  private static DynamicMessage filled(Descriptor d) {
    DynamicMessage.Builder b = DynamicMessage.newBuilder(d);
    for (FieldDescriptor f : d.getFields()) {
      if (f.isRepeated() || f.getRealContainingOneof() != null && f.getIndex() != f.getRealContainingOneof().getField(0)
          .getIndex()) {
        continue;
      }
      Object v = switch (f.getJavaType()) {
        case STRING -> f.getName() + "-" + counter++;
        case INT -> counter++;
        case LONG -> (long) counter++;
        case BOOLEAN -> true;
        case BYTE_STRING -> ByteString.copyFromUtf8("b" + counter++);
        case ENUM -> f.getEnumType().getValues().get(f.getEnumType().getValues().size() - 1);
        case MESSAGE -> filled(f.getMessageType());
        default -> null;
      };
      if (v != null) b.setField(f, v);
    }
    return b.build();
  }

  /** The generated message type of the RPC's request or response, parsed from the filled dynamic one. */
  private static Message parse(Rpc<?, ?> rpc, boolean request, DynamicMessage m) throws Exception {
    var marshaller = request ? rpc.method().getRequestMarshaller() : rpc.method().getResponseMarshaller();
    return (Message) marshaller.parse(new java.io.ByteArrayInputStream(m.toByteArray()));
  }
}

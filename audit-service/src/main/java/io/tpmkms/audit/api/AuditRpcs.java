package io.tpmkms.audit.api;

import static io.tpmkms.platform.rpc.Placement.EVENT_LOOP;
import static io.tpmkms.platform.rpc.Placement.WORKER;

import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.platform.rpc.RpcTable;
import io.tpmkms.platform.rpc.Target;
import io.tpmkms.proto.audit.v1.*;

/**
 * Every RPC of tpmkms.audit.v1.AuditService, declared once. Every one acts on
 * the whole trail (the deployment). The reads' actions are the policy
 * service's (QueryAuditRecords, VerifyAuditChain, ExportAuditRecords,
 * ListCheckpoints, GetCheckpoint: the auditor's, docs/authorization.md);
 * AppendEvents is decided by the audit service itself from the caller's client
 * ({@link io.tpmkms.audit.authz.AuditAuthorizer}, ADR 0023). AppendEvents is
 * validated on the event loop and answered by the single writer after COMMIT;
 * reads run on a worker. {@code AuditRpcsTest} checks the table against the
 * service descriptor.
 */
public final class AuditRpcs {
  private AuditRpcs() {}

  public static final Rpc<AppendEventsRequest, AppendEventsResponse> APPEND_EVENTS =
      Rpc.of(AuditServiceGrpc.getAppendEventsMethod()).action(io.tpmkms.audit.authz.AuditAuthorizer.APPEND_ACTION)
          .target(q -> Target.deployment()).changesState().runs(EVENT_LOOP).build();

  public static final Rpc<QueryRecordsRequest, QueryRecordsResponse> QUERY_RECORDS =
      Rpc.of(AuditServiceGrpc.getQueryRecordsMethod()).action("QueryAuditRecords")
          .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<VerifyChainRequest, VerifyChainResponse> VERIFY_CHAIN =
      Rpc.of(AuditServiceGrpc.getVerifyChainMethod()).action("VerifyAuditChain")
          .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<ListCheckpointsRequest, ListCheckpointsResponse> LIST_CHECKPOINTS =
      Rpc.of(AuditServiceGrpc.getListCheckpointsMethod())
          .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<GetCheckpointRequest, GetCheckpointResponse> GET_CHECKPOINT =
      Rpc.of(AuditServiceGrpc.getGetCheckpointMethod())
          .target(q -> Target.deployment()).runs(WORKER).build();

  /** Server streaming: whole JSON lines in chunks, under the client's flow control. */
  public static final Rpc<ExportRecordsRequest, ExportRecordsChunk> EXPORT_RECORDS =
      Rpc.of(AuditServiceGrpc.getExportRecordsMethod()).action("ExportAuditRecords")
          .target(q -> Target.deployment()).runs(WORKER).build();

  /** The whole service. */
  public static final RpcTable TABLE = RpcTable.of(AuditServiceGrpc.getServiceDescriptor(),
      APPEND_EVENTS, QUERY_RECORDS, VERIFY_CHAIN, LIST_CHECKPOINTS, GET_CHECKPOINT, EXPORT_RECORDS);
}

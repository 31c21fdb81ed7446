package io.tpmkms.policy.api;

import static io.tpmkms.platform.rpc.Placement.EVENT_LOOP;
import static io.tpmkms.platform.rpc.Placement.WORKER;

import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.platform.rpc.RpcTable;
import io.tpmkms.platform.rpc.Target;
import io.tpmkms.proto.policy.v1.*;

/**
 * Every RPC of tpmkms.policy.v1.PolicyService, declared once: the action its
 * caller needs (its name) and on what (the deployment, or the resource of the
 * binding it creates), whether it changes state (then its audit event is
 * written in the change's transaction), and where it runs (decisions, memory
 * only, on the event loop; the database on a worker). No request field of
 * this service is secret. {@code PolicyRpcsTest} checks the table against
 * the service descriptor.
 */
public final class PolicyRpcs {
  private PolicyRpcs() {}

  // ---- decisions --------------------------------------------------------------------------------

  public static final Rpc<AuthorizeRequest, AuthorizeResponse> AUTHORIZE = Rpc.of(PolicyServiceGrpc.getAuthorizeMethod())
      .target(q -> Target.inHandler("services with the client role tpmkms-policy-service/authorizer need no decision"))
      .runs(EVENT_LOOP).build();

  /** Up to 100 decisions (tens of ms): too long for the event loop. */
  public static final Rpc<BatchAuthorizeRequest, BatchAuthorizeResponse> BATCH_AUTHORIZE =
      Rpc.of(PolicyServiceGrpc.getBatchAuthorizeMethod())
          .target(q -> Target.inHandler("as Authorize"))
          .runs(WORKER).build();

  // ---- policies ---------------------------------------------------------------------------------

  public static final Rpc<CreatePolicyRequest, Policy> CREATE_POLICY = Rpc.of(PolicyServiceGrpc.getCreatePolicyMethod())
      .target(q -> Target.deployment()).changesState().runs(WORKER).build();

  public static final Rpc<UpdatePolicyRequest, Policy> UPDATE_POLICY = Rpc.of(PolicyServiceGrpc.getUpdatePolicyMethod())
      .target(q -> Target.deployment()).changesState().runs(WORKER).build();

  public static final Rpc<DeletePolicyRequest, Policy> DELETE_POLICY = Rpc.of(PolicyServiceGrpc.getDeletePolicyMethod())
      .target(q -> Target.deployment()).changesState().runs(WORKER).build();

  public static final Rpc<GetPolicyRequest, Policy> GET_POLICY = Rpc.of(PolicyServiceGrpc.getGetPolicyMethod())
      .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<ListPoliciesRequest, ListPoliciesResponse> LIST_POLICIES =
      Rpc.of(PolicyServiceGrpc.getListPoliciesMethod())
          .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<ListPolicyVersionsRequest, ListPolicyVersionsResponse> LIST_POLICY_VERSIONS =
      Rpc.of(PolicyServiceGrpc.getListPolicyVersionsMethod())
          .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<ValidatePolicyRequest, ValidatePolicyResponse> VALIDATE_POLICY =
      Rpc.of(PolicyServiceGrpc.getValidatePolicyMethod())
          .target(q -> Target.deployment()).runs(WORKER).build();

  // ---- role bindings ----------------------------------------------------------------------------

  /** Needs admin on the binding's resource. */
  public static final Rpc<CreateRoleBindingRequest, RoleBinding> CREATE_ROLE_BINDING =
      Rpc.of(PolicyServiceGrpc.getCreateRoleBindingMethod())
          .target(q -> Target.resource(q.getResource().getNamespace(), q.getResource().getKeyName()))
          .changesState().runs(WORKER).build();

  public static final Rpc<DeleteRoleBindingRequest, RoleBinding> DELETE_ROLE_BINDING =
      Rpc.of(PolicyServiceGrpc.getDeleteRoleBindingMethod())
          .target(q -> Target.inHandler("the binding's resource is known only after reading it; whoever may not "
              + "delete it learns nothing about it (the decision comes before NOT_FOUND details)"))
          .changesState().runs(WORKER).build();

  public static final Rpc<ListRoleBindingsRequest, ListRoleBindingsResponse> LIST_ROLE_BINDINGS =
      Rpc.of(PolicyServiceGrpc.getListRoleBindingsMethod())
          .target(q -> Target.deployment()).runs(WORKER).build();

  // ---- misc -------------------------------------------------------------------------------------

  public static final Rpc<GetSchemaRequest, GetSchemaResponse> GET_SCHEMA = Rpc.of(PolicyServiceGrpc.getGetSchemaMethod())
      .target(q -> Target.deployment()).runs(EVENT_LOOP).build();

  /** Any authenticated caller may see how it is seen: that is what one needs to understand a denial. */
  public static final Rpc<WhoAmIRequest, WhoAmIResponse> WHO_AM_I = Rpc.of(PolicyServiceGrpc.getWhoAmIMethod())
      .target(q -> Target.anyCaller()).runs(EVENT_LOOP).build();

  /** The whole service. */
  public static final RpcTable TABLE = RpcTable.of(PolicyServiceGrpc.getServiceDescriptor(),
      AUTHORIZE, BATCH_AUTHORIZE, CREATE_POLICY, UPDATE_POLICY, DELETE_POLICY, GET_POLICY, LIST_POLICIES,
      LIST_POLICY_VERSIONS, VALIDATE_POLICY, CREATE_ROLE_BINDING, DELETE_ROLE_BINDING, LIST_ROLE_BINDINGS, GET_SCHEMA,
      WHO_AM_I);
}

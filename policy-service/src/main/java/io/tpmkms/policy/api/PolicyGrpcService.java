package io.tpmkms.policy.api;

import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import io.tpmkms.policy.engine.Authorizer;
import io.tpmkms.policy.engine.AuthzRequest;
import io.tpmkms.policy.engine.PolicyEngine;
import io.tpmkms.policy.engine.ResourceRef;
import io.tpmkms.policy.engine.Role;
import io.tpmkms.policy.engine.SubjectRef;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;
import io.tpmkms.policy.store.PolicyStore;
import io.tpmkms.policy.store.PolicyVersionEntity;
import io.tpmkms.policy.store.RoleBindingEntity;
import io.tpmkms.proto.policy.v1.*;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.paging.PageTokens;
import io.tpmkms.platform.rpc.Pipeline;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The gRPC adapter of tpmkms.policy.v1.PolicyService. Every management RPC
 * first authorizes its caller ({@link CallerAuthorizer}) and checks its input
 * (bad input changes nothing), then calls the store; after a change the
 * engine reloads at once, so this replica decides with the change from the
 * next call on. Each method hands its handler to the platform's
 * {@link Pipeline} with its declaration in {@link PolicyRpcs}, which checks
 * the caller, runs it where it belongs and maps every failure.
 */
@GrpcService
public class PolicyGrpcService implements PolicyServiceGrpc.AsyncService, io.grpc.BindableService {
  /** Requests are parsed and checked by the shared {@link io.tpmkms.platform.input.RequestGate}. */
  @Override
  public io.grpc.ServerServiceDefinition bindService() {
    return io.tpmkms.platform.input.RequestGate.strict(PolicyServiceGrpc.bindService(this));
  }

  static final int DEFAULT_PAGE = 50;
  static final int MAX_PAGE = 1000;
  static final int MAX_BATCH = 100;
  static final int MAX_DESCRIPTION = 1024;
  private static final Pattern POLICY_ID = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");

  private final Authorizer authorizer;
  private final PolicyStore store;
  private final CallerAuthorizer callers;
  private final PageTokens pageTokens;
  private final Pipeline pipeline;

  public PolicyGrpcService(Authorizer authorizer, PolicyStore store, CallerAuthorizer callers,
      javax.sql.DataSource dataSource, Pipeline pipeline) {
    this.pipeline = pipeline;
    this.authorizer = authorizer;
    this.store = store;
    this.callers = callers;
    this.pageTokens = PageTokens.backedBy(dataSource);
  }

  private PolicyEngine engine() { return authorizer.engine(); }

  // ---- decisions --------------------------------------------------------------------------------

  @Override
  public void authorize(AuthorizeRequest r, StreamObserver<AuthorizeResponse> out) {
    pipeline.unary(PolicyRpcs.AUTHORIZE, r, out, () -> decide(r, decisionCaller(List.of(r))));
  }

  @Override
  public void batchAuthorize(BatchAuthorizeRequest r, StreamObserver<BatchAuthorizeResponse> out) {
    // up to 100 decisions (tens of ms): too long for the event loop
    pipeline.unary(PolicyRpcs.BATCH_AUTHORIZE, r, out, () -> {
      Principal self = decisionCaller(r.getRequestsList());
      if (r.getRequestsCount() > MAX_BATCH) {
        throw ServiceException.invalid(PolicyReason.INVALID_REQUEST, "at most " + MAX_BATCH + " requests per batch");
      }
      BatchAuthorizeResponse.Builder b = BatchAuthorizeResponse.newBuilder();
      for (AuthorizeRequest one : r.getRequestsList()) b.addResponses(decide(one, self));
      return b.build();
    });
  }

  /**
   * Who may ask: anyone about themselves (requests without a principal: "what may I do", as the
   * console asks to show what the signed-in person may not do); about others, the services holding
   * the authorizer client role and callers allowed "Authorize" on the deployment. Returns the
   * caller, the principal of the requests that name none.
   */
  private Principal decisionCaller(List<AuthorizeRequest> requests) {
    boolean aboutOthers = false;
    for (AuthorizeRequest one : requests) aboutOthers |= one.hasPrincipal();
    return aboutOthers ? callers.requireDecisionCaller() : callers.caller();
  }

  private AuthorizeResponse decide(AuthorizeRequest r, Principal self) {
    Principal who = r.hasPrincipal() ? Principal.fromProto(r.getPrincipal()) : self;
    if (who == null) throw ServiceException.invalid(PolicyReason.INVALID_PRINCIPAL, "principal is required");
    AuthzRequest q = new AuthzRequest(who, r.getAction(),
        ProtoMapper.resource(r.getResource()), r.getContextMap());
    return ProtoMapper.decision(authorizer.decide(q));
  }

  // ---- policies ---------------------------------------------------------------------------------

  @Override
  public void createPolicy(CreatePolicyRequest r, StreamObserver<io.tpmkms.proto.policy.v1.Policy> out) {
    pipeline.unary(PolicyRpcs.CREATE_POLICY, r, out, () -> {
      Principal p = callers.caller();
      checkPolicyId(r.getId());
      checkDescription(r.getDescription());
      engine().requireValid(r.getText());
      PolicyVersionEntity v = store.createPolicy(r.getId(), r.getDescription(), r.getText(), p.subject());
      authorizer.refresh();
      return ProtoMapper.policy(v);
    });
  }

  @Override
  public void updatePolicy(UpdatePolicyRequest r, StreamObserver<io.tpmkms.proto.policy.v1.Policy> out) {
    pipeline.unary(PolicyRpcs.UPDATE_POLICY, r, out, () -> {
      Principal p = callers.caller();
      checkPolicyId(r.getId());
      checkDescription(r.getDescription());
      checkVersion(r.getExpectedVersion());
      engine().requireValid(r.getText());
      PolicyVersionEntity v = store.updatePolicy(r.getId(), r.getDescription(), r.getText(), r.getExpectedVersion(),
          p.subject());
      authorizer.refresh();
      return ProtoMapper.policy(v);
    });
  }

  @Override
  public void deletePolicy(DeletePolicyRequest r, StreamObserver<io.tpmkms.proto.policy.v1.Policy> out) {
    pipeline.unary(PolicyRpcs.DELETE_POLICY, r, out, () -> {
      Principal p = callers.caller();
      checkPolicyId(r.getId());
      checkVersion(r.getExpectedVersion());
      PolicyVersionEntity v = store.deletePolicy(r.getId(), r.getExpectedVersion(), p.subject());
      authorizer.refresh();
      return ProtoMapper.policy(v);
    });
  }

  @Override
  public void getPolicy(GetPolicyRequest r, StreamObserver<io.tpmkms.proto.policy.v1.Policy> out) {
    pipeline.unary(PolicyRpcs.GET_POLICY, r, out, () -> {
      checkPolicyId(r.getId());
      checkVersion(r.getVersion());
      return ProtoMapper.policy(store.getPolicy(r.getId(), r.getVersion()));
    });
  }

  @Override
  public void listPolicies(ListPoliciesRequest r, StreamObserver<ListPoliciesResponse> out) {
    pipeline.unary(PolicyRpcs.LIST_POLICIES, r, out, () -> {
      int size = pageSize(r.getPageSize());
      String after = pageTokens.openString(r, "");
      List<PolicyVersionEntity> page = store.listPolicies(r.getIncludeDeleted(), after, size + 1);
      ListPoliciesResponse.Builder b = ListPoliciesResponse.newBuilder();
      page.stream().limit(size).forEach(v -> b.addPolicies(ProtoMapper.policy(v)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).policyId));
      return b.build();
    });
  }

  @Override
  public void listPolicyVersions(ListPolicyVersionsRequest r, StreamObserver<ListPolicyVersionsResponse> out) {
    pipeline.unary(PolicyRpcs.LIST_POLICY_VERSIONS, r, out, () -> {
      checkPolicyId(r.getId());
      int size = pageSize(r.getPageSize());
      long after = pageTokens.openLong(r, 0);
      List<PolicyVersionEntity> page = store.listVersions(r.getId(), after, size + 1);
      ListPolicyVersionsResponse.Builder b = ListPolicyVersionsResponse.newBuilder();
      page.stream().limit(size).forEach(v -> b.addVersions(ProtoMapper.policy(v)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).version));
      return b.build();
    });
  }

  @Override
  public void validatePolicy(ValidatePolicyRequest r, StreamObserver<ValidatePolicyResponse> out) {
    pipeline.unary(PolicyRpcs.VALIDATE_POLICY, r, out, () -> {
      List<String> errors = engine().validate(r.getText());
      return ValidatePolicyResponse.newBuilder().setValid(errors.isEmpty()).addAllErrors(errors).build();
    });
  }

  // ---- role bindings ----------------------------------------------------------------------------

  @Override
  public void createRoleBinding(CreateRoleBindingRequest r, StreamObserver<RoleBinding> out) {
    pipeline.unary(PolicyRpcs.CREATE_ROLE_BINDING, r, out, () -> {
      ResourceRef resource = ProtoMapper.resource(r.getResource());
      Principal p = callers.caller();
      SubjectRef subject = ProtoMapper.subject(r.getSubject());
      Role role = ProtoMapper.role(r.getRole());
      checkDescription(r.getDescription());
      RoleBindingEntity b = store.createBinding(subject, role, resource, r.getDescription(), p.subject());
      authorizer.refresh();
      return ProtoMapper.binding(b);
    });
  }

  @Override
  public void deleteRoleBinding(DeleteRoleBindingRequest r, StreamObserver<RoleBinding> out) {
    pipeline.unary(PolicyRpcs.DELETE_ROLE_BINDING, r, out, () -> {
      Principal caller = callers.caller();
      if (r.getId().isEmpty() || r.getId().length() > 64) {
        throw ServiceException.invalid(PolicyReason.INVALID_REQUEST, "id: the binding id, e.g. \"rb-12\"");
      }
      // Whoever may not delete it learns nothing about it: the decision comes before NOT_FOUND details.
      RoleBindingEntity existing;
      try {
        existing = store.getBinding(r.getId());
      } catch (ServiceException e) {
        callers.require("DeleteRoleBinding", ResourceRef.DEPLOYMENT);
        throw e;
      }
      callers.require("DeleteRoleBinding", existing.resource());
      RoleBindingEntity b = store.deleteBinding(r.getId(), caller.subject());
      authorizer.refresh();
      return ProtoMapper.binding(b);
    });
  }

  @Override
  public void listRoleBindings(ListRoleBindingsRequest r, StreamObserver<ListRoleBindingsResponse> out) {
    pipeline.unary(PolicyRpcs.LIST_ROLE_BINDINGS, r, out, () -> {
      ResourceRef resource = r.hasResource() ? ProtoMapper.resource(r.getResource()) : null;
      SubjectRef subject = r.hasSubject() ? ProtoMapper.subject(r.getSubject()) : null;
      int size = pageSize(r.getPageSize());
      long after = pageTokens.openLong(r, 0);
      List<RoleBindingEntity> page = store.listBindings(resource, subject, r.getIncludeDeleted(), after, size + 1);
      ListRoleBindingsResponse.Builder b = ListRoleBindingsResponse.newBuilder();
      page.stream().limit(size).forEach(x -> b.addBindings(ProtoMapper.binding(x)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).seq));
      return b.build();
    });
  }

  // ---- misc -------------------------------------------------------------------------------------

  @Override
  public void getSchema(GetSchemaRequest r, StreamObserver<GetSchemaResponse> out) {
    pipeline.unary(PolicyRpcs.GET_SCHEMA, r, out, () -> {
      return GetSchemaResponse.newBuilder().setSchema(engine().schemaText())
          .addAllActions(engine().actions().names()).build();
    });
  }

  /** Any authenticated caller may see how it is seen: that is what one needs to understand a denial. */
  @Override
  public void whoAmI(WhoAmIRequest r, StreamObserver<WhoAmIResponse> out) {
    pipeline.unary(PolicyRpcs.WHO_AM_I, r, out, () -> WhoAmIResponse.newBuilder().setPrincipal(callers.caller().toProto()).build());
  }

  // ---- input checks -----------------------------------------------------------------------------

  private static void checkPolicyId(String id) {
    if (!POLICY_ID.matcher(id).matches()) {
      throw ServiceException.invalid(PolicyReason.INVALID_POLICY_ID, "id must match [a-z0-9][a-z0-9._-]{0,62}");
    }
  }

  private static void checkDescription(String d) {
    if (d.length() > MAX_DESCRIPTION) {
      throw ServiceException.invalid(PolicyReason.INVALID_REQUEST, "description longer than " + MAX_DESCRIPTION + " characters");
    }
  }

  private static void checkVersion(long v) {
    if (v < 0) throw ServiceException.invalid(PolicyReason.INVALID_REQUEST, "version must not be negative");
  }

  static int pageSize(int requested) {
    if (requested < 0 || requested > MAX_PAGE) {
      throw ServiceException.invalid(PolicyReason.INVALID_REQUEST, "page_size must be at most " + MAX_PAGE);
    }
    return requested == 0 ? DEFAULT_PAGE : requested;
  }
}

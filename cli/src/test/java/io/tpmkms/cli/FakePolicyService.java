package io.tpmkms.cli;

import io.grpc.ServerServiceDefinition;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.policy.v1.*;

/** Test double of the policy service (see {@link FakeService}). */
public final class FakePolicyService extends FakeService<FakePolicyService> implements PolicyServiceGrpc.AsyncService {

    @Override
    public ServerServiceDefinition bindService() {
        return PolicyServiceGrpc.bindService(this);
    }

    @Override public void authorize(AuthorizeRequest r, StreamObserver<AuthorizeResponse> o) { answer(r, o, AuthorizeResponse.getDefaultInstance()); }
    @Override public void batchAuthorize(BatchAuthorizeRequest r, StreamObserver<BatchAuthorizeResponse> o) { answer(r, o, BatchAuthorizeResponse.getDefaultInstance()); }
    @Override public void createPolicy(CreatePolicyRequest r, StreamObserver<Policy> o) { answer(r, o, Policy.getDefaultInstance()); }
    @Override public void updatePolicy(UpdatePolicyRequest r, StreamObserver<Policy> o) { answer(r, o, Policy.getDefaultInstance()); }
    @Override public void deletePolicy(DeletePolicyRequest r, StreamObserver<Policy> o) { answer(r, o, Policy.getDefaultInstance()); }
    @Override public void getPolicy(GetPolicyRequest r, StreamObserver<Policy> o) { answer(r, o, Policy.getDefaultInstance()); }
    @Override public void listPolicies(ListPoliciesRequest r, StreamObserver<ListPoliciesResponse> o) { answer(r, o, ListPoliciesResponse.getDefaultInstance()); }
    @Override public void listPolicyVersions(ListPolicyVersionsRequest r, StreamObserver<ListPolicyVersionsResponse> o) { answer(r, o, ListPolicyVersionsResponse.getDefaultInstance()); }
    @Override public void validatePolicy(ValidatePolicyRequest r, StreamObserver<ValidatePolicyResponse> o) { answer(r, o, ValidatePolicyResponse.getDefaultInstance()); }
    @Override public void createRoleBinding(CreateRoleBindingRequest r, StreamObserver<RoleBinding> o) { answer(r, o, RoleBinding.getDefaultInstance()); }
    @Override public void deleteRoleBinding(DeleteRoleBindingRequest r, StreamObserver<RoleBinding> o) { answer(r, o, RoleBinding.getDefaultInstance()); }
    @Override public void listRoleBindings(ListRoleBindingsRequest r, StreamObserver<ListRoleBindingsResponse> o) { answer(r, o, ListRoleBindingsResponse.getDefaultInstance()); }
    @Override public void getSchema(GetSchemaRequest r, StreamObserver<GetSchemaResponse> o) { answer(r, o, GetSchemaResponse.getDefaultInstance()); }
    @Override public void whoAmI(WhoAmIRequest r, StreamObserver<WhoAmIResponse> o) { answer(r, o, WhoAmIResponse.getDefaultInstance()); }
}

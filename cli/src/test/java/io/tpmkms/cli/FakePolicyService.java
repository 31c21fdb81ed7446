package io.tpmkms.cli;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.policy.v1.*;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Test double of the policy service, like {@link FakeKeyService}: records every request and
 * answers with the responses queued for its type (the default instance when none is queued), or
 * with the error set by {@link #fail}.
 */
final class FakePolicyService extends PolicyServiceGrpc.PolicyServiceImplBase {

    private final List<Message> requests = new ArrayList<>();
    private final Map<Class<?>, Deque<Message>> responses = new HashMap<>();
    private com.google.rpc.Status error;

    synchronized void reset() {
        requests.clear();
        responses.clear();
        error = null;
    }

    /** Queues responses; each is answered once, in order, to the RPC returning its type. */
    synchronized FakePolicyService respond(Message... answers) {
        for (Message m : answers) {
            responses.computeIfAbsent(m.getClass(), c -> new ArrayDeque<>()).add(m);
        }
        return this;
    }

    /** Every following call fails with this status and an ErrorInfo carrying {@code reason}. */
    synchronized void fail(Status.Code code, String message, String reason) {
        error = com.google.rpc.Status.newBuilder()
                .setCode(code.value())
                .setMessage(message)
                .addDetails(Any.pack(ErrorInfo.newBuilder().setReason(reason).setDomain("tpmkms.io").build()))
                .build();
    }

    synchronized List<Message> requests() {
        return List.copyOf(requests);
    }

    synchronized <T extends Message> List<T> requests(Class<T> type) {
        return requests.stream().filter(type::isInstance).map(type::cast).toList();
    }

    /** The one request of that type; fails if there was none or more than one. */
    <T extends Message> T only(Class<T> type) {
        List<T> found = requests(type);
        if (found.size() != 1) {
            throw new AssertionError("expected one " + type.getSimpleName() + ", got " + requests());
        }
        return found.get(0);
    }

    @SuppressWarnings("unchecked")
    private <Q extends Message, R extends Message> void answer(Q request, StreamObserver<R> observer, R empty) {
        com.google.rpc.Status failure;
        Message response;
        synchronized (this) {
            requests.add(request);
            failure = error;
            Deque<Message> queued = responses.get(empty.getClass());
            response = queued == null || queued.isEmpty() ? empty : queued.poll();
        }
        if (failure != null) {
            observer.onError(StatusProto.toStatusRuntimeException(failure));
            return;
        }
        observer.onNext((R) response);
        observer.onCompleted();
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

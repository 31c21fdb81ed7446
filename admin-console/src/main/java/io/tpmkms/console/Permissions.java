package io.tpmkms.console;

import io.grpc.StatusRuntimeException;
import io.quarkus.oidc.AccessTokenCredential;
import io.tpmkms.proto.policy.v1.AuthorizeRequest;
import io.tpmkms.proto.policy.v1.BatchAuthorizeRequest;
import io.tpmkms.proto.policy.v1.Resource;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the signed-in person may do, as the policy service says (asked about the caller itself). */
@Singleton
public class Permissions {
  @Inject Services services;
  @Inject AccessTokenCredential token;

  /** What the signed-in person may do with {@code actions} on the key (or namespace when name is ""). */
  public Map<String, Views.Can> can(List<String> actions, String namespace, String name) {
    Resource.Builder res = Resource.newBuilder().setNamespace(namespace);
    if (!name.isEmpty()) res.setKeyName(name);
    BatchAuthorizeRequest.Builder b = BatchAuthorizeRequest.newBuilder();
    for (String a : actions) b.addRequests(AuthorizeRequest.newBuilder().setAction(a).setResource(res));
    Map<String, Views.Can> out = new LinkedHashMap<>();
    try {
      var r = services.policies(token).batchAuthorize(b.build());
      for (int i = 0; i < actions.size(); i++) {
        var d = r.getResponses(i);
        boolean allowed = d.getDecision() == io.tpmkms.proto.policy.v1.Decision.ALLOW;
        String why = d.getReasonsList().stream().map(x -> x.getDescription().isEmpty() ? x.getKind() + " " + x.getId()
            : x.getDescription()).filter(s -> !s.isBlank()).reduce((x, y) -> x + "; " + y).orElse("");
        out.put(actions.get(i), new Views.Can(allowed, allowed ? "" : "Not allowed for you: " + (why.isEmpty()
            ? "no role binding or policy permits it" : why)));
      }
    } catch (StatusRuntimeException e) {
      for (String a : actions) out.put(a, new Views.Can(false, "Unknown: " + Errors.plain(e)));
    }
    return out;
  }

}

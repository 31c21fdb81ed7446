package io.tpmkms.console;

import io.grpc.StatusRuntimeException;
import io.quarkus.oidc.AccessTokenCredential;
import io.quarkus.oidc.IdToken;
import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateData;
import io.quarkus.qute.TemplateInstance;
import io.smallrye.common.annotation.Blocking;
import io.tpmkms.proto.policy.v1.*;
import io.vertx.core.http.HttpServerRequest;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.jwt.JsonWebToken;
import org.jboss.resteasy.reactive.RestForm;
import org.jboss.resteasy.reactive.RestQuery;

/**
 * Policies, role bindings and "who may do what" (docs/console.md): what the policy service holds,
 * changed with its own validation (errors shown next to the text), versions side by side, and a
 * decision with its reasons for yourself or — for admins and auditors — for any principal.
 */
@Path("/policies")
@Produces(MediaType.TEXT_HTML)
@Blocking
public class PolicyPages {
  @Inject Services services;
  @Inject Csrf csrf;
  @Inject AccessTokenCredential token;
  @Inject @IdToken JsonWebToken idToken;
  @Inject Permissions pages;
  @Context HttpServerRequest request;

  @Location("policies.html") Template list;
  @Location("policy.html") Template one;
  @Location("failed.html") Template failed;

  @TemplateData
  public record PolicyRow(String id, long version, String description, String text, boolean deleted, String created,
      String createdBy) {
    static PolicyRow of(Policy p) {
      return new PolicyRow(p.getId(), p.getVersion(), p.getDescription(), p.getText(), p.getDeleted(),
          Views.time(p.getCreateTime()), p.getCreatedBy());
    }
  }

  @TemplateData
  public record BindingRow(String id, String subject, String role, String resource, String description,
      String created, String createdBy) {
    static BindingRow of(RoleBinding b) {
      Subject s = b.getSubject();
      String subject = switch (s.getKindCase()) {
        case USER -> "user " + s.getUser();
        case GROUP -> "group " + s.getGroup();
        case REALM_ROLE -> "realm role " + s.getRealmRole();
        case CLIENT_ROLE -> "client role " + s.getClientRole();
        case CLIENT -> "client " + s.getClient();
        default -> "?";
      };
      return new BindingRow(b.getId(), subject, Views.words(b.getRole()), describe(b.getResource()),
          b.getDescription(), Views.time(b.getCreateTime()), b.getCreatedBy());
    }
  }

  @TemplateData
  public record Decision(String question, boolean allowed, List<String> reasons) {}

  static String describe(Resource r) {
    if (r.getNamespace().isEmpty()) return "the whole deployment";
    return r.getKeyName().isEmpty() ? "namespace " + r.getNamespace() : "key " + r.getNamespace() + "/" + r.getKeyName();
  }

  private TemplateInstance page(Template t, String title) {
    String user = idToken.getClaim("preferred_username");
    return t.data("title", title).data("user", user == null ? idToken.getSubject() : user)
        .data("csrf", csrf.token(request));
  }

  // ---- the list, the forms, the check ---------------------------------------------------------------

  @GET
  public Response policies(@RestQuery String checkAction, @RestQuery String checkNamespace, @RestQuery String checkKey,
      @RestQuery String checkSubject, @RestQuery String checkRoles, @RestQuery String checkGroups) {
    return Response.ok(listPage(checkAction, checkNamespace, checkKey, checkSubject, checkRoles, checkGroups,
        "", "", "", "")).build();
  }

  TemplateInstance listPage(String checkAction, String checkNamespace, String checkKey, String checkSubject,
      String checkRoles, String checkGroups, String newId, String newDescription, String newText, String error) {
    List<PolicyRow> policies = new ArrayList<>();
    List<BindingRow> bindings = new ArrayList<>();
    String problem = "";
    try {
      var stub = services.policies(token);
      String pageToken = "";
      do {
        var r = stub.listPolicies(ListPoliciesRequest.newBuilder().setPageSize(1000).setPageToken(pageToken).build());
        r.getPoliciesList().forEach(p -> policies.add(PolicyRow.of(p)));
        pageToken = r.getNextPageToken();
      } while (!pageToken.isEmpty());
      do {
        var r = stub.listRoleBindings(ListRoleBindingsRequest.newBuilder().setPageSize(1000).setPageToken(pageToken)
            .build());
        r.getBindingsList().forEach(b -> bindings.add(BindingRow.of(b)));
        pageToken = r.getNextPageToken();
      } while (!pageToken.isEmpty());
    } catch (StatusRuntimeException e) {
      problem = Errors.plain(e);
    }
    Decision decision = null;
    String checkError = "";
    if (checkAction != null && !checkAction.isBlank()) {
      try {
        decision = check(checkAction.trim(), Pages.nz(checkNamespace).trim(), Pages.nz(checkKey).trim(),
            Pages.nz(checkSubject).trim(), Pages.nz(checkRoles), Pages.nz(checkGroups));
      } catch (StatusRuntimeException e) {
        checkError = Errors.plain(e);
      }
    }
    Map<String, Views.Can> can = pages.can(List.of("CreatePolicy", "CreateRoleBinding"), "", "");
    Map<String, String> check = new LinkedHashMap<>();
    check.put("action", Pages.nz(checkAction));
    check.put("namespace", Pages.nz(checkNamespace));
    check.put("key", Pages.nz(checkKey));
    check.put("subject", Pages.nz(checkSubject));
    check.put("roles", Pages.nz(checkRoles));
    check.put("groups", Pages.nz(checkGroups));
    return page(list, "Policies and role bindings").data("policies", policies).data("bindings", bindings)
        .data("problem", problem).data("decision", decision).data("checkError", checkError).data("check", check)
        .data("can", can).data("newId", newId).data("newDescription", newDescription).data("newText", newText)
        .data("error", error).data("roles", Views.names(Role.values())).data("bindingError", "");
  }

  /** The decision for yourself (no subject) or for the principal described. */
  Decision check(String action, String namespace, String key, String subject, String roles, String groups) {
    Resource.Builder res = Resource.newBuilder().setNamespace(namespace);
    if (!key.isEmpty()) res.setKeyName(key);
    AuthorizeRequest.Builder q = AuthorizeRequest.newBuilder().setAction(action).setResource(res);
    String who = "you";
    if (!subject.isEmpty()) {
      Principal.Builder p = Principal.newBuilder().setSubject(subject).setIssuer(idToken.getIssuer());
      for (String r : roles.split(",")) if (!r.isBlank()) p.addRealmRoles(r.trim());
      for (String g : groups.split(",")) if (!g.isBlank()) p.addGroups(g.trim());
      q.setPrincipal(p);
      who = "subject " + subject;
    }
    AuthorizeResponse r = services.policies(token).authorize(q.build());
    List<String> reasons = new ArrayList<>();
    for (Reason x : r.getReasonsList()) {
      String what = switch (x.getKind()) {
        case ROLE_BINDING -> "role binding " + x.getId();
        case POLICY -> "policy " + x.getId() + " v" + x.getVersion();
        case DEFAULT_DENY -> "default deny";
        default -> x.getId();
      };
      reasons.add(x.getDescription().isEmpty() ? what : what + ": " + x.getDescription());
    }
    return new Decision("May " + who + " " + action + " on " + describe(res.build()) + "?",
        r.getDecision() == io.tpmkms.proto.policy.v1.Decision.ALLOW, reasons);
  }

  @POST
  public Response create(@RestForm(Csrf.FIELD) String csrfToken, @RestForm String id, @RestForm String description,
      @RestForm String text) {
    if (!csrf.valid(request, csrfToken)) return refused();
    String error = validate(text);
    if (error.isEmpty()) {
      try {
        services.policies(token).createPolicy(CreatePolicyRequest.newBuilder().setId(Pages.nz(id).trim())
            .setDescription(Pages.nz(description)).setText(Pages.nz(text)).build());
        return Pages.redirect("/policies/" + Pages.enc(id.trim()) + "?done=saved");
      } catch (StatusRuntimeException e) {
        error = Errors.plain(e);
      }
    }
    return Response.status(400).entity(listPage(null, null, null, null, null, null, Pages.nz(id),
        Pages.nz(description), Pages.nz(text), error)).build();
  }

  /** The policy service's validator: "" when valid, else its messages (shown next to the text). */
  String validate(String text) {
    try {
      var v = services.policies(token).validatePolicy(ValidatePolicyRequest.newBuilder().setText(Pages.nz(text))
          .build());
      return v.getValid() ? "" : "The policy is not valid: " + String.join("; ", v.getErrorsList());
    } catch (StatusRuntimeException e) {
      return Errors.plain(e);
    }
  }

  // ---- one policy ---------------------------------------------------------------------------------

  @GET
  @Path("{id}")
  public Response policy(@PathParam("id") String id, @RestQuery Long a, @RestQuery Long b, @RestQuery String done) {
    List<PolicyRow> versions = new ArrayList<>();
    try {
      String pageToken = "";
      do {
        var r = services.policies(token).listPolicyVersions(ListPolicyVersionsRequest.newBuilder().setId(id)
            .setPageSize(1000).setPageToken(pageToken).build());
        r.getVersionsList().forEach(p -> versions.add(PolicyRow.of(p)));
        pageToken = r.getNextPageToken();
      } while (!pageToken.isEmpty());
    } catch (StatusRuntimeException e) {
      return Response.status(Pages.httpStatus(e)).entity(page(failed, "Policy " + id).data("error", Errors.plain(e))
          .data("back", "/policies")).build();
    }
    if (versions.isEmpty()) {
      return Response.status(404).entity(page(failed, "Policy " + id).data("error", "No such policy")
          .data("back", "/policies")).build();
    }
    PolicyRow latest = versions.get(versions.size() - 1);
    long left = a != null ? a : Math.max(1, latest.version() - 1);
    long right = b != null ? b : latest.version();
    PolicyRow l = versions.stream().filter(v -> v.version() == left).findFirst().orElse(latest);
    PolicyRow r = versions.stream().filter(v -> v.version() == right).findFirst().orElse(latest);
    return Response.ok(policyPage(id, versions, latest, l, r, latest.text(), latest.description(), "",
        "saved".equals(done) ? "Policy saved." : "deleted".equals(done) ? "Policy deleted." : "")).build();
  }

  TemplateInstance policyPage(String id, List<PolicyRow> versions, PolicyRow latest, PolicyRow left, PolicyRow right,
      String text, String description, String error, String done) {
    return page(one, "Policy " + id).data("id", id).data("versions", versions).data("latest", latest)
        .data("left", left).data("right", right).data("text", text).data("description", description)
        .data("error", error).data("done", done).data("nextVersion", latest.version() + 1).data("deleteError", "")
        .data("can", pages.can(List.of("UpdatePolicy", "DeletePolicy"), "", ""));
  }

  @POST
  @Path("{id}")
  public Response update(@PathParam("id") String id, @RestForm(Csrf.FIELD) String csrfToken,
      @RestForm String description, @RestForm String text, @RestForm long expectedVersion) {
    if (!csrf.valid(request, csrfToken)) return refused();
    String error = validate(text);
    if (error.isEmpty()) {
      try {
        services.policies(token).updatePolicy(UpdatePolicyRequest.newBuilder().setId(id)
            .setDescription(Pages.nz(description)).setText(Pages.nz(text)).setExpectedVersion(expectedVersion).build());
        return Pages.redirect("/policies/" + Pages.enc(id) + "?done=saved");
      } catch (StatusRuntimeException e) {
        error = Errors.plain(e);
      }
    }
    Response current = policy(id, null, null, null);
    if (current.getStatus() != 200) return current;
    TemplateInstance shown = (TemplateInstance) current.getEntity();
    return Response.status(400).entity(shown.data("text", Pages.nz(text)).data("description", Pages.nz(description))
        .data("error", error)).build();
  }

  /**
   * Deletes the policy (a new, deleted version: the history stays), after the policy's id is
   * typed to confirm; {@code expectedVersion} makes a concurrent change refuse the deletion.
   */
  @POST
  @Path("{id}/delete")
  public Response delete(@PathParam("id") String id, @RestForm(Csrf.FIELD) String csrfToken,
      @RestForm String confirm, @RestForm long expectedVersion) {
    if (!csrf.valid(request, csrfToken)) return refused();
    String error;
    int status;
    if (!id.equals(Pages.nz(confirm).trim())) {
      error = "Type the policy's id, " + id + ", to confirm its deletion.";
      status = 400;
    } else {
      try {
        services.policies(token).deletePolicy(DeletePolicyRequest.newBuilder().setId(id)
            .setExpectedVersion(expectedVersion).build());
        return Pages.redirect("/policies/" + Pages.enc(id) + "?done=deleted");
      } catch (StatusRuntimeException e) {
        error = Errors.plain(e);
        status = Pages.httpStatus(e);
      }
    }
    Response current = policy(id, null, null, null);
    if (current.getStatus() != 200) return current;
    return Response.status(status).entity(((TemplateInstance) current.getEntity()).data("deleteError", error))
        .build();
  }

  // ---- role bindings ------------------------------------------------------------------------------

  @POST
  @Path("bindings")
  public Response bind(@RestForm(Csrf.FIELD) String csrfToken, @RestForm String subjectKind,
      @RestForm String subject, @RestForm String role, @RestForm String namespace, @RestForm String key,
      @RestForm String description) {
    if (!csrf.valid(request, csrfToken)) return refused();
    String error;
    try {
      Subject.Builder s = Subject.newBuilder();
      String v = Pages.nz(subject).trim();
      switch (Pages.nz(subjectKind)) {
        case "user" -> s.setUser(v);
        case "group" -> s.setGroup(v);
        case "realm_role" -> s.setRealmRole(v);
        case "client_role" -> s.setClientRole(v);
        case "client" -> s.setClient(v);
        default -> throw new IllegalArgumentException("choose what the subject is");
      }
      Resource.Builder res = Resource.newBuilder().setNamespace(Pages.nz(namespace).trim());
      if (!Pages.nz(key).isBlank()) res.setKeyName(key.trim());
      services.policies(token).createRoleBinding(CreateRoleBindingRequest.newBuilder().setSubject(s)
          .setRole(Role.valueOf(Pages.nz(role))).setResource(res).setDescription(Pages.nz(description)).build());
      return Pages.redirect("/policies");
    } catch (IllegalArgumentException e) {
      error = "Invalid input: " + e.getMessage();
    } catch (StatusRuntimeException e) {
      error = Errors.plain(e);
    }
    return Response.status(400).entity(listPage(null, null, null, null, null, null, "", "", "", "")
        .data("bindingError", error)).build();
  }

  @POST
  @Path("bindings/{id}/delete")
  public Response unbind(@PathParam("id") String id, @RestForm(Csrf.FIELD) String csrfToken) {
    if (!csrf.valid(request, csrfToken)) return refused();
    try {
      services.policies(token).deleteRoleBinding(DeleteRoleBindingRequest.newBuilder().setId(id).build());
      return Pages.redirect("/policies");
    } catch (StatusRuntimeException e) {
      return Response.status(Pages.httpStatus(e)).entity(page(failed, "Role binding").data("error", Errors.plain(e))
          .data("back", "/policies")).build();
    }
  }

  private Response refused() {
    return Response.status(403).entity(page(failed, "Refused").data("error",
        "Refused: the form was not sent from this console's page (missing or wrong CSRF token). Reload the page and "
            + "try again.").data("back", "/policies")).build();
  }
}

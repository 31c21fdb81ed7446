package io.tpmkms.console;

import io.grpc.StatusRuntimeException;
import io.quarkus.oidc.AccessTokenCredential;
import io.quarkus.oidc.IdToken;
import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateInstance;
import io.smallrye.common.annotation.Blocking;
import io.tpmkms.proto.audit.v1.GetCheckpointRequest;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.proto.policy.v1.AuthorizeRequest;
import io.tpmkms.proto.policy.v1.BatchAuthorizeRequest;
import io.tpmkms.proto.policy.v1.Resource;
import io.tpmkms.proto.policy.v1.WhoAmIRequest;
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
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.jwt.JsonWebToken;
import org.jboss.resteasy.reactive.RestForm;
import org.jboss.resteasy.reactive.RestQuery;

/**
 * The console's pages (docs/console.md). Every service call carries the signed-in person's access
 * token; what they may not do is shown disabled with the policy service's reason, and the services
 * refuse it anyway. Every change is a POST with the session's CSRF token, answered by a redirect
 * (success) or by the page with the service's refusal in plain words.
 */
@Path("/")
@Produces(MediaType.TEXT_HTML)
@Blocking
public class Pages {
  /** What the key page offers, as policy actions. */
  static final List<String> KEY_ACTIONS = List.of("RotateKey", "UpdateKey", "SetPrimaryVersion", "DisableKeyVersion",
      "EnableKeyVersion", "ScheduleKeyVersionDestruction", "RestoreKeyVersion", "RevokeKeyVersion", "GetPublicKey",
      "GetKeyAttestation");
  /** Fixed messages after a change (never text from the request). */
  static final Map<String, String> DONE = Map.ofEntries(
      Map.entry("created", "Key created."), Map.entry("rotated", "Key rotated: a new primary version."),
      Map.entry("primary", "Primary version set."), Map.entry("disabled", "Version disabled."),
      Map.entry("enabled", "Version enabled."), Map.entry("scheduled", "Version scheduled for destruction."),
      Map.entry("restored", "Version restored (disabled: enable it to use it)."),
      Map.entry("revoked", "Version revoked (compromised)."),
      Map.entry("imported", "Version imported."));

  @Inject Services services;
  @Inject Csrf csrf;
  @Inject Permissions permissions;
  @Inject AccessTokenCredential token;
  @Inject @IdToken JsonWebToken idToken;
  @Context HttpServerRequest request;

  @Location("overview.html") Template overview;
  @Location("keys.html") Template keys;
  @Location("key.html") Template key;
  @Location("new-key.html") Template newKey;
  @Location("confirm-destroy.html") Template confirmDestroy;
  @Location("attestation.html") Template attestation;
  @Inject EkCaCertificates ekCas;
  @Location("failed.html") Template failed;

  private TemplateInstance page(Template t, String title) {
    String user = idToken.getClaim("preferred_username");
    return t.data("title", title).data("user", user == null ? idToken.getSubject() : user)
        .data("csrf", csrf.token(request));
  }

  // ---- overview -----------------------------------------------------------------------------------

  @GET
  public TemplateInstance overview() {
    List<Services.Health> health = List.of(services.health("key service"), services.health("policy service"),
        services.health("audit service"));
    String principal;
    try {
      var p = services.policies(token).whoAmI(WhoAmIRequest.getDefaultInstance()).getPrincipal();
      principal = p.getUsername() + " — roles " + String.join(", ", p.getRealmRolesList().stream()
          .filter(r -> r.startsWith("tpmkms-")).toList());
    } catch (StatusRuntimeException e) {
      principal = Errors.plain(e);
    }
    Map<String, Integer> byState = new LinkedHashMap<>();
    List<Views.KeyRow> due = new ArrayList<>();
    int count = 0;
    String keysProblem = "";
    boolean more = false;
    try {
      var r = services.keys(token).listKeys(ListKeysRequest.newBuilder().setPageSize(1000).build());
      for (Key k : r.getKeysList()) {
        Views.KeyRow row = Views.KeyRow.of(k);
        count++;
        byState.merge(row.primaryState().isEmpty() ? "NO PRIMARY" : row.primaryState(), 1, Integer::sum);
        if (row.rotationDue()) due.add(row);
      }
      more = !r.getNextPageToken().isEmpty();
    } catch (StatusRuntimeException e) {
      keysProblem = Errors.plain(e);
    }
    // versions whose destruction is scheduled: the keys that have one (a service-side filter), then their versions;
    // a key the person may not read is skipped and said, the rest of the overview stays
    List<Views.Destruction> destructions = new ArrayList<>();
    boolean moreDestructions = false;
    int unreadable = 0;
    if (keysProblem.isEmpty()) {
      var stub = services.keys(token);
      try {
        var r = stub.listKeys(ListKeysRequest.newBuilder().setPageSize(20)
            .setAnyVersionState(KeyVersionState.DESTROY_SCHEDULED).build());
        moreDestructions = !r.getNextPageToken().isEmpty();
        for (Key k : r.getKeysList()) {
          try {
            String pageToken = "";
            do {
              var v = stub.listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(k.getName()).setPageSize(1000)
                  .setPageToken(pageToken).build());
              v.getVersionsList().stream().filter(x -> x.getState() == KeyVersionState.DESTROY_SCHEDULED)
                  .forEach(x -> destructions.add(Views.Destruction.of(k, x)));
              pageToken = v.getNextPageToken();
            } while (!pageToken.isEmpty());
          } catch (StatusRuntimeException e) {
            unreadable++;
          }
        }
        destructions.sort(java.util.Comparator.comparing(Views.Destruction::destroyTime));
      } catch (StatusRuntimeException e) {
        unreadable = -1;
      }
    }
    String checkpoint;
    try {
      var c = services.audit(token).getCheckpoint(GetCheckpointRequest.getDefaultInstance()).getCheckpoint();
      checkpoint = "record " + c.getSequence() + ", " + Views.time(c.getTime()) + ", anchored " + c.getAnchor();
    } catch (StatusRuntimeException e) {
      checkpoint = Errors.plain(e);
    }
    return page(overview, "Overview").data("health", health).data("principal", principal).data("count", count)
        .data("more", more).data("byState", byState).data("due", due).data("keysProblem", keysProblem)
        .data("checkpoint", checkpoint).data("destructions", destructions).data("moreDestructions", moreDestructions)
        .data("unreadable", unreadable);
  }

  // ---- keys ---------------------------------------------------------------------------------------

  @GET
  @Path("keys")
  public Response keyList(@RestQuery String namespace, @RestQuery String label, @RestQuery String purpose,
      @RestQuery String protection, @RestQuery String state, @RestQuery String name, @RestQuery String page,
      @RestQuery String done) {
    Views.KeyFilter filter = new Views.KeyFilter(nz(namespace), nz(label), nz(purpose), nz(protection), nz(state),
        nz(name));
    ListKeysRequest.Builder q = ListKeysRequest.newBuilder().setNamespace(filter.namespace()).setPageSize(100)
        .setPageToken(nz(page));
    if (!filter.label().isEmpty()) {
      int eq = filter.label().indexOf('=');
      if (eq <= 0) {
        return Response.status(400).entity(page(failed, "Keys").data("error",
            "Label filter must be name=value").data("back", "/keys")).build();
      }
      q.putLabels(filter.label().substring(0, eq), filter.label().substring(eq + 1));
    }
    // every filter is the service's (ListKeys): one page of 100 whatever the catalogue's size
    try {
      if (!filter.purpose().isEmpty()) q.setPurpose(KeyPurpose.valueOf(filter.purpose()));
      if (!filter.protection().isEmpty()) q.setProtectionLevel(ProtectionLevel.valueOf(filter.protection()));
      if (!filter.state().isEmpty()) q.setPrimaryState(KeyVersionState.valueOf(filter.state()));
    } catch (IllegalArgumentException e) {
      return Response.status(400).entity(page(failed, "Keys").data("error", "Unknown filter value")
          .data("back", "/keys")).build();
    }
    q.setNameContains(filter.name());
    List<Views.KeyRow> rows = new ArrayList<>();
    String next;
    try {
      var r = services.keys(token).listKeys(q.build());
      r.getKeysList().forEach(k -> rows.add(Views.KeyRow.of(k)));
      next = r.getNextPageToken();
    } catch (StatusRuntimeException e) {
      return failedPage("Keys", e, "/");
    }
    String nextLink = next.isEmpty() ? "" : "/keys?" + query(Map.of("namespace", filter.namespace(), "label",
        filter.label(), "purpose", filter.purpose(), "protection", filter.protection(), "state", filter.state(),
        "name", filter.name(), "page", next));
    return Response.ok(page(keys, "Keys").data("rows", rows).data("filter", filter).data("next", nextLink)
        .data("purposes", Views.names(KeyPurpose.values())).data("protections", Views.names(ProtectionLevel.values()))
        .data("states", Views.names(KeyVersionState.values())).data("done", DONE.getOrDefault(nz(done), ""))
        .data("canCreate", canCreate(filter.namespace())))
        .build();
  }

  @GET
  @Path("keys/{namespace}/{name}")
  public Response keyPage(@PathParam("namespace") String namespace, @PathParam("name") String name,
      @RestQuery String done) {
    String full = namespace + "/" + name;
    Key k;
    List<Views.VersionRow> versions = new ArrayList<>();
    try {
      var stub = services.keys(token);
      k = stub.getKey(GetKeyRequest.newBuilder().setKey(full).build()).getKey();
      String pageToken = "";
      do {
        var r = stub.listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(full).setPageSize(1000)
            .setIncludeDestroyed(true).setPageToken(pageToken).build());
        r.getVersionsList().forEach(v -> versions.add(Views.VersionRow.of(v)));
        pageToken = r.getNextPageToken();
      } while (!pageToken.isEmpty());
    } catch (StatusRuntimeException e) {
      return failedPage("Key " + full, e, "/keys");
    }
    java.util.Collections.reverse(versions); // newest first
    return Response.ok(page(key, "Key " + full).data("key", Views.KeyRow.of(k)).data("versions", versions)
        .data("can", can(KEY_ACTIONS, namespace, name)).data("done", DONE.getOrDefault(nz(done), ""))).build();
  }

  @GET
  @Path("keys/{namespace}/{name}/versions/{version}/public-key")
  @Produces("application/x-pem-file")
  public Response publicKey(@PathParam("namespace") String namespace, @PathParam("name") String name,
      @PathParam("version") int version) {
    try {
      String pem = services.keys(token).getPublicKey(GetPublicKeyRequest.newBuilder().setKey(namespace + "/" + name)
          .setVersion(version).build()).getPem();
      return Response.ok(pem).header("Content-Disposition",
          "attachment; filename=\"" + name.replaceAll("[^A-Za-z0-9._-]", "_") + "-v" + version + ".pem\"").build();
    } catch (StatusRuntimeException e) {
      return Response.fromResponse(failedPage("Public key", e, keyPath(namespace + "/" + name)))
          .type(MediaType.TEXT_HTML).build();
    }
  }

  /** The version's TPM attestation, fetched with a fresh nonce and checked here, explained check by check. */
  @GET
  @Path("keys/{namespace}/{name}/versions/{version}/attestation")
  public Response attestationPage(@PathParam("namespace") String namespace, @PathParam("name") String name,
      @PathParam("version") int version) {
    String full = namespace + "/" + name;
    try {
      AttestationPage.Outcome o = AttestationPage.check(services.keys(token), full, version, ekCas.get());
      return Response.ok(page(attestation, "Attestation of " + full).data("key", full).data("back", keyPath(full))
          .data("o", o)).build();
    } catch (StatusRuntimeException e) {
      return failedPage("Attestation of " + full, e, keyPath(full));
    } catch (IllegalArgumentException e) {
      // a statement whose PEM or structure cannot be read: not verified, and said so
      return Response.status(502).entity(page(failed, "Attestation of " + full).data("error",
          "The attestation could not be read, so it is NOT verified: " + e.getMessage()).data("back", keyPath(full)))
          .build();
    }
  }

  @GET
  @Path("keys/new")
  public TemplateInstance newKeyForm(@RestQuery String namespace) {
    return page(newKey, "New key").data("namespace", nz(namespace))
        .data("purposes", Views.names(KeyPurpose.values())).data("protections", Views.names(ProtectionLevel.values()))
        .data("error", "");
  }

  @POST
  @Path("keys")
  public Response createKey(@RestForm(Csrf.FIELD) String csrfToken, @RestForm String namespace,
      @RestForm String name, @RestForm String purpose, @RestForm String protection, @RestForm String rotationDays,
      @RestForm String labels, @RestForm String importOnly) {
    Response refused = checkCsrf(csrfToken);
    if (refused != null) return refused;
    CreateKeyRequest.Builder b = CreateKeyRequest.newBuilder().setNamespace(nz(namespace).trim())
        .setName(nz(name).trim()).setImportOnly("on".equals(importOnly));
    try {
      b.setPurpose(KeyPurpose.valueOf(nz(purpose)));
      if (!nz(protection).isEmpty()) b.setProtectionLevel(ProtectionLevel.valueOf(protection));
      if (!nz(rotationDays).isBlank()) {
        long days = Long.parseLong(rotationDays.trim());
        b.setRotationPeriod(com.google.protobuf.Duration.newBuilder().setSeconds(days * 86_400));
      }
      for (String pair : nz(labels).split(",")) {
        if (pair.isBlank()) continue;
        int eq = pair.indexOf('=');
        if (eq <= 0) throw new IllegalArgumentException("labels are name=value pairs, separated by commas");
        b.putLabels(pair.substring(0, eq).trim(), pair.substring(eq + 1).trim());
      }
    } catch (IllegalArgumentException e) {
      return Response.status(400).entity(newKeyForm(namespace).data("error", "Invalid input: "
          + (e instanceof NumberFormatException ? "rotation period must be a whole number of days" : e.getMessage())))
          .build();
    }
    try {
      Key k = services.keys(token).createKey(b.build()).getKey();
      return redirect(keyPath(k.getName()) + "?done=created");
    } catch (StatusRuntimeException e) {
      return Response.status(httpStatus(e)).entity(newKeyForm(namespace).data("error", Errors.plain(e))).build();
    }
  }

  @POST
  @Path("keys/{namespace}/{name}/rotate")
  public Response rotate(@PathParam("namespace") String namespace, @PathParam("name") String name,
      @RestForm(Csrf.FIELD) String csrfToken) {
    return change(csrfToken, namespace, name, "rotated",
        () -> services.keys(token).rotateKey(RotateKeyRequest.newBuilder().setKey(namespace + "/" + name).build()));
  }

  @POST
  @Path("keys/{namespace}/{name}/versions/{version}/{action}")
  public Response versionAction(@PathParam("namespace") String namespace, @PathParam("name") String name,
      @PathParam("version") int version, @PathParam("action") String action, @RestForm(Csrf.FIELD) String csrfToken,
      @RestForm String confirm) {
    String full = namespace + "/" + name;
    var stub = services.keys(token);
    return switch (action) {
      case "primary" -> change(csrfToken, namespace, name, "primary", () -> stub.setPrimaryVersion(
          SetPrimaryVersionRequest.newBuilder().setKey(full).setVersion(version).build()));
      case "disable" -> change(csrfToken, namespace, name, "disabled", () -> stub.disableKeyVersion(
          DisableKeyVersionRequest.newBuilder().setKey(full).setVersion(version).build()));
      case "enable" -> change(csrfToken, namespace, name, "enabled", () -> stub.enableKeyVersion(
          EnableKeyVersionRequest.newBuilder().setKey(full).setVersion(version).build()));
      case "restore" -> change(csrfToken, namespace, name, "restored", () -> stub.restoreKeyVersion(
          RestoreKeyVersionRequest.newBuilder().setKey(full).setVersion(version).build()));
      case "destroy", "revoke" -> {
        Response refused = checkCsrf(csrfToken);
        if (refused != null) yield refused;
        if (!full.equals(nz(confirm).trim())) {
          yield Response.status(400).entity(page(confirmDestroy, "Confirm").data("key", full)
              .data("namespace", namespace).data("name", name).data("version", version).data("action", action)
              .data("error", "Type the key's full name, " + full + ", to confirm.")).build();
        }
        yield change(csrfToken, namespace, name, action.equals("destroy") ? "scheduled" : "revoked", () -> {
          if (action.equals("destroy")) {
            stub.scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder().setKey(full)
                .setVersion(version).build());
          } else {
            stub.revokeKeyVersion(RevokeKeyVersionRequest.newBuilder().setKey(full).setVersion(version).build());
          }
        });
      }
      default -> Response.status(404).entity(page(failed, "Not found").data("error", "No such action")
          .data("back", keyPath(full))).build();
    };
  }

  /** The confirmation page of the irreversible actions (typing the key's name). */
  @GET
  @Path("keys/{namespace}/{name}/versions/{version}/{action}")
  public Response confirm(@PathParam("namespace") String namespace, @PathParam("name") String name,
      @PathParam("version") int version, @PathParam("action") String action) {
    if (!action.equals("destroy") && !action.equals("revoke")) {
      return redirect(keyPath(namespace + "/" + name));
    }
    return Response.ok(page(confirmDestroy, "Confirm").data("key", namespace + "/" + name)
        .data("namespace", namespace).data("name", name).data("version", version).data("action", action)
        .data("error", "")).build();
  }

  /**
   * CreateKey is decided on a key (a policy may look at its name), and the name is not chosen yet:
   * the question is asked about a placeholder name in the namespace; without a namespace the form is
   * offered and the service decides on the real name either way.
   */
  Views.Can canCreate(String namespace) {
    if (namespace.isEmpty()) return new Views.Can(true, "");
    return can(List.of("CreateKey"), namespace, "new-key").get("CreateKey");
  }

  // ---- helpers ------------------------------------------------------------------------------------

  Map<String, Views.Can> can(List<String> actions, String namespace, String name) {
    return permissions.can(actions, namespace, name);
  }

  private Response change(String csrfToken, String namespace, String name, String done, Runnable call) {
    Response refused = checkCsrf(csrfToken);
    if (refused != null) return refused;
    try {
      call.run();
      return redirect(keyPath(namespace + "/" + name) + "?done=" + done);
    } catch (StatusRuntimeException e) {
      return failedPage("Key " + namespace + "/" + name, e, keyPath(namespace + "/" + name));
    }
  }

  Response checkCsrf(String presented) {
    if (csrf.valid(request, presented)) return null;
    return Response.status(403).entity(page(failed, "Refused").data("error",
        "Refused: the form was not sent from this console's page (missing or wrong CSRF token). Reload the page and "
            + "try again.").data("back", "/")).build();
  }

  private Response failedPage(String title, StatusRuntimeException e, String back) {
    return Response.status(httpStatus(e)).entity(page(failed, title).data("error", Errors.plain(e))
        .data("back", back)).build();
  }

  static int httpStatus(StatusRuntimeException e) {
    return switch (e.getStatus().getCode()) {
      case PERMISSION_DENIED -> 403;
      case UNAUTHENTICATED -> 401;
      case NOT_FOUND -> 404;
      case INVALID_ARGUMENT, OUT_OF_RANGE -> 400;
      case ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED -> 409;
      case UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED -> 503;
      case UNIMPLEMENTED -> 501;
      default -> 500;
    };
  }

  static String keyPath(String fullName) {
    int slash = fullName.indexOf('/');
    return "/keys/" + enc(fullName.substring(0, slash)) + "/" + enc(fullName.substring(slash + 1));
  }

  static Response redirect(String path) {
    return Response.seeOther(URI.create(path)).build();
  }

  static String query(Map<String, String> params) {
    StringBuilder b = new StringBuilder();
    params.forEach((k, v) -> {
      if (v == null || v.isEmpty()) return;
      if (b.length() > 0) b.append('&');
      b.append(enc(k)).append('=').append(enc(v));
    });
    return b.toString();
  }

  static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
  }

  static String nz(String s) {
    return s == null ? "" : s;
  }
}

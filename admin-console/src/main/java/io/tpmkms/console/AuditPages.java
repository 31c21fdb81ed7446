package io.tpmkms.console;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.StatusRuntimeException;
import io.quarkus.oidc.AccessTokenCredential;
import io.quarkus.oidc.IdToken;
import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateData;
import io.quarkus.qute.TemplateInstance;
import io.smallrye.common.annotation.Blocking;
import io.tpmkms.proto.audit.v1.Checkpoint;
import io.tpmkms.proto.audit.v1.ExportRecordsChunk;
import io.tpmkms.proto.audit.v1.ExportRecordsRequest;
import io.tpmkms.proto.audit.v1.ListCheckpointsRequest;
import io.tpmkms.proto.audit.v1.QueryRecordsRequest;
import io.tpmkms.proto.audit.v1.VerifyChainRequest;
import io.tpmkms.proto.audit.v1.VerifyChainResponse;
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
import jakarta.ws.rs.core.StreamingOutput;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.jwt.JsonWebToken;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.RestForm;
import org.jboss.resteasy.reactive.RestQuery;

/**
 * The audit trail (docs/console.md): records queried with filters, one record in full with its
 * place in the chain checked, the chain verified and explained, the signed checkpoints, and an export
 * download (JSON lines, as {@code tpmkms audit export} writes them). Every read is the signed-in
 * person's own call: the audit service decides (auditors and admins) and records it.
 */
@Path("/audit")
@Produces(MediaType.TEXT_HTML)
@Blocking
public class AuditPages {
  private static final Logger LOG = Logger.getLogger(AuditPages.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  @Inject Services services;
  @Inject Csrf csrf;
  @Inject AccessTokenCredential token;
  @Inject @IdToken JsonWebToken idToken;
  @Context HttpServerRequest request;

  @Location("audit.html") Template audit;
  @Location("audit-record.html") Template record;
  @Location("checkpoints.html") Template checkpoints;
  @Location("failed.html") Template failed;

  @TemplateData
  public record Field(String name, String value) {}

  @TemplateData
  public record CheckpointRow(long sequence, String time, String headHash, String anchor, String anchorValue) {
    static CheckpointRow of(Checkpoint c) {
      HexFormat hex = HexFormat.of();
      return new CheckpointRow(c.getSequence(), Views.time(c.getTime()), hex.formatHex(c.getHeadHash().toByteArray()),
          c.getAnchor(), hex.formatHex(c.getAnchorValue().toByteArray()));
    }
  }

  private TemplateInstance page(Template t, String title) {
    String user = idToken.getClaim("preferred_username");
    return t.data("title", title).data("user", user == null ? idToken.getSubject() : user)
        .data("csrf", csrf.token(request));
  }

  private Response failedPage(String title, StatusRuntimeException e, String back) {
    return Response.status(Pages.httpStatus(e)).entity(page(failed, title).data("error", Errors.plain(e))
        .data("back", back)).build();
  }

  @GET
  public Response query(@RestQuery String principal, @RestQuery String key, @RestQuery String operation,
      @RestQuery String outcome, @RestQuery String page) {
    Map<String, String> f = new LinkedHashMap<>();
    f.put("principal", Pages.nz(principal));
    f.put("key", Pages.nz(key));
    f.put("operation", Pages.nz(operation));
    f.put("outcome", Pages.nz(outcome));
    List<Views.RecordRow> rows = new ArrayList<>();
    String next = "";
    String error = "";
    try {
      var r = services.audit(token).queryRecords(QueryRecordsRequest.newBuilder().setPrincipal(f.get("principal"))
          .setKey(f.get("key")).setOperation(f.get("operation")).setOutcome(f.get("outcome")).setPageSize(50)
          .setPageToken(Pages.nz(page)).build());
      r.getRecordsList().forEach(x -> rows.add(Views.RecordRow.of(x)));
      if (!r.getNextPageToken().isEmpty()) {
        Map<String, String> q = new LinkedHashMap<>(f);
        q.put("page", r.getNextPageToken());
        next = "/audit?" + Pages.query(q);
      }
    } catch (StatusRuntimeException e) {
      error = Errors.plain(e);
    }
    return Response.ok(page(audit, "Audit").data("rows", rows).data("f", f).data("next", next).data("error", error)
        .data("verified", null)).build();
  }

  @POST
  @Path("verify")
  public Response verify(@RestForm(Csrf.FIELD) String csrfToken) {
    if (!csrf.valid(request, csrfToken)) return refused();
    try {
      VerifyChainResponse v = services.audit(token).verifyChain(VerifyChainRequest.getDefaultInstance());
      String text = v.getValid()
          ? "The chain is intact: " + v.getRecordsChecked() + " records checked (each hash recomputed and linked to "
              + "the previous one), " + v.getCheckpointsChecked() + " signed checkpoints checked; head record "
              + v.getHeadSequence() + "."
          : "The chain is BROKEN at record " + v.getFirstBrokenSequence() + ": " + v.getProblem();
      return Response.ok(page(audit, "Audit").data("rows", List.of())
          .data("f", Map.of("principal", "", "key", "", "operation", "", "outcome", "")).data("next", "")
          .data("error", "").data("verified", text).data("valid", v.getValid())).build();
    } catch (StatusRuntimeException e) {
      return failedPage("Verify the audit chain", e, "/audit");
    }
  }

  /**
   * One record, every field as the export has it, and its link in the chain checked by the audit
   * service (this record's hash recomputed, and its previous hash equal to the record before it).
   */
  @GET
  @Path("records/{sequence}")
  public Response record(@PathParam("sequence") long sequence) {
    if (sequence < 1) {
      return Response.status(400).entity(page(failed, "Audit record").data("error", "Records are numbered from 1")
          .data("back", "/audit")).build();
    }
    List<Field> fields = new ArrayList<>();
    try {
      StringBuilder line = new StringBuilder();
      Iterator<ExportRecordsChunk> it = services.audit(token).exportRecords(ExportRecordsRequest.newBuilder()
          .setFromSequence(sequence).setToSequence(sequence).build());
      it.forEachRemaining(c -> line.append(c.getJsonl().toStringUtf8()));
      if (line.toString().isBlank()) {
        return Response.status(404).entity(page(failed, "Audit record " + sequence).data("error",
            "No record " + sequence + " (beyond the head of the chain)").data("back", "/audit")).build();
      }
      flatten("", JSON.readTree(line.toString().strip()), fields);
    } catch (StatusRuntimeException e) {
      return failedPage("Audit record " + sequence, e, "/audit");
    } catch (IOException e) {
      LOG.warnf("audit record %d: the export line is not JSON: %s", sequence, e.getClass().getSimpleName());
      return Response.status(502).entity(page(failed, "Audit record " + sequence).data("error",
          "The audit service's answer could not be read").data("back", "/audit")).build();
    }
    String link;
    boolean linkOk;
    try {
      VerifyChainResponse v = services.audit(token).verifyChain(VerifyChainRequest.newBuilder()
          .setFromSequence(Math.max(1, sequence - 1)).setToSequence(sequence).build());
      linkOk = v.getValid();
      link = v.getValid()
          ? "In the chain: this record's hash recomputes from its content"
              + (sequence > 1 ? " and its previous hash is record " + (sequence - 1) + "'s hash." : " (the first record).")
          : "BROKEN at record " + v.getFirstBrokenSequence() + ": " + v.getProblem();
    } catch (StatusRuntimeException e) {
      linkOk = false;
      link = "Not checked: " + Errors.plain(e);
    }
    return Response.ok(page(record, "Audit record " + sequence).data("fields", fields).data("sequence", sequence)
        .data("link", link).data("linkOk", linkOk)).build();
  }

  private static void flatten(String prefix, JsonNode node, List<Field> out) {
    if (node.isObject()) {
      node.fields().forEachRemaining(e -> flatten(prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(),
          e.getValue(), out));
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) flatten(prefix + "[" + i + "]", node.get(i), out);
    } else {
      out.add(new Field(prefix, node.isTextual() ? node.textValue() : node.toString()));
    }
  }

  /** The signed checkpoints, oldest first, paged. */
  @GET
  @Path("checkpoints")
  public Response checkpointList(@RestQuery String page) {
    List<CheckpointRow> rows = new ArrayList<>();
    String next = "";
    try {
      var r = services.audit(token).listCheckpoints(ListCheckpointsRequest.newBuilder().setPageSize(100)
          .setPageToken(Pages.nz(page)).build());
      r.getCheckpointsList().forEach(c -> rows.add(CheckpointRow.of(c)));
      if (!r.getNextPageToken().isEmpty()) next = "/audit/checkpoints?page=" + Pages.enc(r.getNextPageToken());
    } catch (StatusRuntimeException e) {
      return failedPage("Checkpoints", e, "/audit");
    }
    return Response.ok(page(checkpoints, "Audit checkpoints").data("rows", rows).data("next", next)).build();
  }

  /**
   * The records from..to (0: the head) as JSON lines, streamed to the browser as a download. The
   * first chunk is read before answering, so a refusal is a page, not a broken download.
   */
  @GET
  @Path("export")
  @Produces("application/x-ndjson")
  public Response export(@RestQuery Long from, @RestQuery Long to) {
    long first = from == null ? 1 : from;
    long last = to == null ? 0 : to;
    if (first < 1 || last < 0 || (last != 0 && last < first)) {
      return Response.status(400).type(MediaType.TEXT_HTML).entity(page(failed, "Export").data("error",
          "Invalid range: from is a record number (1 or more), to is 0 (the head) or at least from").data("back",
          "/audit")).build();
    }
    // the stream lives in its own cancellable context: ended when the download ends, breaks or is refused
    io.grpc.Context.CancellableContext call = io.grpc.Context.current().withCancellation();
    Iterator<ExportRecordsChunk> it;
    ExportRecordsChunk head;
    io.grpc.Context previous = call.attach();
    try {
      it = services.auditStream(token).exportRecords(ExportRecordsRequest.newBuilder().setFromSequence(first)
          .setToSequence(last).build());
      head = it.hasNext() ? it.next() : null;
    } catch (StatusRuntimeException e) {
      call.cancel(null);
      return Response.status(Pages.httpStatus(e)).type(MediaType.TEXT_HTML).entity(page(failed, "Export")
          .data("error", Errors.plain(e)).data("back", "/audit")).build();
    } finally {
      call.detach(previous);
    }
    StreamingOutput body = out -> {
      try {
        if (head != null) out.write(head.getJsonl().toByteArray());
        while (it.hasNext()) out.write(it.next().getJsonl().toByteArray());
      } catch (StatusRuntimeException e) {
        // the download is cut short: the last line is whole or missing, and the browser sees the error
        LOG.warnf("audit export cut short: %s", e.getStatus().getCode());
        throw new UncheckedIOException(new IOException("the audit service stopped the export: "
            + e.getStatus().getCode()));
      } finally {
        call.cancel(null); // a browser that went away stops the audit service's stream too
      }
    };
    String name = "tpmkms-audit-" + first + "-" + (last == 0 ? "head" : Long.toString(last)) + ".jsonl";
    return Response.ok(body).header("Content-Disposition", "attachment; filename=\"" + name + "\"").build();
  }

  private Response refused() {
    return Response.status(403).entity(page(failed, "Refused").data("error",
        "Refused: the form was not sent from this console's page (missing or wrong CSRF token). Reload the page and "
            + "try again.").data("back", "/audit")).build();
  }
}

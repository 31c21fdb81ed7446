package io.tpmkms.console;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import io.quarkus.oidc.AccessTokenCredential;
import io.quarkus.oidc.IdToken;
import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateData;
import io.quarkus.qute.TemplateInstance;
import io.smallrye.common.annotation.Blocking;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateImportJobRequest;
import io.tpmkms.proto.key.v1.DuplicationBlob;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.ListImportJobsRequest;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.vertx.core.http.HttpServerRequest;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.eclipse.microprofile.jwt.JsonWebToken;
import org.jboss.resteasy.reactive.RestForm;
import org.jboss.resteasy.reactive.RestQuery;
import org.jboss.resteasy.reactive.multipart.FileUpload;

/**
 * Import jobs (docs/import-export.md, docs/console.md): list, create (the wrapping key is made by
 * the service, in the TPM for TPM jobs), a job's wrapping key to download, and a key version
 * imported from a file the operator wrapped elsewhere (openssl, tpm2-tools, another KMS). The
 * console only carries the wrapped bytes: it never sees key material in the clear.
 */
@Path("/import-jobs")
@Produces(MediaType.TEXT_HTML)
@Blocking
public class ImportPages {
  /** Uploaded wrapped keys: an RSA-4096 PKCS#8 key wrapped with KWP is about 2.9 KiB; leave room. */
  static final long MAX_UPLOAD = 64 * 1024;

  @Inject Services services;
  @Inject Csrf csrf;
  @Inject AccessTokenCredential token;
  @Inject @IdToken JsonWebToken idToken;
  @Inject Permissions permissions;
  @Context HttpServerRequest request;

  @Location("import-jobs.html") Template list;
  @Location("import-job.html") Template one;
  @Location("failed.html") Template failed;

  @TemplateData
  public record JobRow(String name, String namespace, String jobId, String method, String protection, String state,
      boolean active, boolean duplication, String created, String expires, String publicKeyPem) {
    static JobRow of(ImportJob j) {
      return new JobRow(j.getName(), j.getNamespace(), j.getJobId(), Views.words(j.getImportMethod()),
          Views.words(j.getProtectionLevel()), Views.words(j.getState()),
          j.getState() == io.tpmkms.proto.key.v1.ImportJobState.ACTIVE,
          j.getImportMethod() == ImportMethod.TPM2_DUPLICATION, Views.time(j.getCreateTime()),
          Views.time(j.getExpireTime()), j.getPublicKeyPem());
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

  private Response refused(String back) {
    return Response.status(403).entity(page(failed, "Refused").data("error",
        "Refused: the form was not sent from this console's page (missing or wrong CSRF token). Reload the page and "
            + "try again.").data("back", back)).build();
  }

  @GET
  public Response jobs(@RestQuery String namespace, @RestQuery String page, @RestQuery String key) {
    return Response.ok(listPage(Pages.nz(namespace), Pages.nz(page), "", Pages.nz(key))).build();
  }

  /** @param key the key a version is being imported into, when the operator came from its page ("" if not) */
  TemplateInstance listPage(String namespace, String pageToken, String error, String key) {
    List<JobRow> rows = new ArrayList<>();
    String next = "";
    String problem = "";
    try {
      var r = services.keys(token).listImportJobs(ListImportJobsRequest.newBuilder().setNamespace(namespace)
          .setPageSize(100).setPageToken(pageToken).build());
      r.getImportJobsList().forEach(j -> rows.add(JobRow.of(j)));
      if (!r.getNextPageToken().isEmpty()) {
        next = "/import-jobs?" + Pages.query(java.util.Map.of("namespace", namespace, "page", r.getNextPageToken(),
            "key", key));
      }
    } catch (StatusRuntimeException e) {
      problem = Errors.plain(e);
    }
    return page(list, "Import jobs").data("rows", rows).data("namespace", namespace).data("next", next)
        .data("key", key).data("keyQuery", key.isEmpty() ? "" : "?key=" + Pages.enc(key))
        .data("problem", problem).data("error", error)
        .data("methods", Views.names(ImportMethod.values())).data("protections", Views.names(ProtectionLevel.values()))
        .data("canCreate", permissions.can(List.of("CreateImportJob"), namespace, "").get("CreateImportJob"));
  }

  /** Creates the job and waits up to 30 s for its wrapping key (an RSA key in a TPM takes seconds). */
  @POST
  public Response create(@RestForm(Csrf.FIELD) String csrfToken, @RestForm String namespace, @RestForm String jobId,
      @RestForm String method, @RestForm String protection, @RestForm String key) {
    if (!csrf.valid(request, csrfToken)) return refused("/import-jobs");
    CreateImportJobRequest.Builder b = CreateImportJobRequest.newBuilder().setNamespace(Pages.nz(namespace).trim())
        .setJobId(Pages.nz(jobId).trim()).setWait(com.google.protobuf.Duration.newBuilder().setSeconds(30));
    try {
      b.setImportMethod(ImportMethod.valueOf(Pages.nz(method)));
      if (!Pages.nz(protection).isEmpty()) b.setProtectionLevel(ProtectionLevel.valueOf(protection));
    } catch (IllegalArgumentException e) {
      return Response.status(400).entity(listPage(Pages.nz(namespace), "", "Invalid input: unknown import method or "
          + "protection level", Pages.nz(key))).build();
    }
    try {
      ImportJob j = services.keys(token).createImportJob(b.build()).getImportJob();
      return Pages.redirect("/import-jobs/" + Pages.enc(j.getNamespace()) + "/" + Pages.enc(j.getJobId())
          + "?done=created" + (Pages.nz(key).isEmpty() ? "" : "&key=" + Pages.enc(key)));
    } catch (StatusRuntimeException e) {
      return Response.status(Pages.httpStatus(e)).entity(listPage(Pages.nz(namespace), "", Errors.plain(e), Pages.nz(key))).build();
    }
  }

  @GET
  @Path("{namespace}/{job}")
  public Response job(@PathParam("namespace") String namespace, @PathParam("job") String job,
      @RestQuery String done, @RestQuery String key) {
    return jobPage(namespace, job, Pages.nz(key), "created".equals(done) ? "Import job created." : "", "", 200);
  }

  /**
   * @param key the key the operator came to import into ("" if none): whether they may is asked
   *     about that key; without one, the form is offered and the service decides
   */
  private Response jobPage(String namespace, String job, String key, String done, String error, int status) {
    ImportJob j;
    try {
      j = services.keys(token).getImportJob(GetImportJobRequest.newBuilder().setImportJob(namespace + "/" + job)
          .build()).getImportJob();
    } catch (StatusRuntimeException e) {
      return failedPage("Import job " + namespace + "/" + job, e, "/import-jobs?namespace=" + Pages.enc(namespace));
    }
    return Response.status(status).entity(page(one, "Import job " + j.getName()).data("job", JobRow.of(j))
        .data("done", done).data("error", error).data("algorithms", Views.names(Algorithm.values()))
        .data("key", key).data("canImport", key.isEmpty() ? new Views.Can(true, "")
            : permissions.can(List.of("ImportKeyVersion"), namespace, key).get("ImportKeyVersion")))
        .build();
  }

  /** The job's wrapping key: the RSA public key (PEM), or a TPM job's storage key as a TPM2B_PUBLIC file. */
  @GET
  @Path("{namespace}/{job}/wrapping-key")
  @Produces(MediaType.APPLICATION_OCTET_STREAM)
  public Response wrappingKey(@PathParam("namespace") String namespace, @PathParam("job") String job) {
    ImportJob j;
    try {
      j = services.keys(token).getImportJob(GetImportJobRequest.newBuilder().setImportJob(namespace + "/" + job)
          .build()).getImportJob();
    } catch (StatusRuntimeException e) {
      return Response.fromResponse(failedPage("Import job", e, "/import-jobs")).type(MediaType.TEXT_HTML).build();
    }
    String safe = job.replaceAll("[^A-Za-z0-9._-]", "_");
    if (j.getImportMethod() == ImportMethod.TPM2_DUPLICATION) {
      return Response.ok(j.getWrappingPublic().toByteArray())
          .header("Content-Disposition", "attachment; filename=\"" + safe + "-wrapping.pub\"").build();
    }
    return Response.ok(j.getPublicKeyPem()).type("application/x-pem-file")
        .header("Content-Disposition", "attachment; filename=\"" + safe + "-wrapping.pem\"").build();
  }

  /**
   * Imports a version into a key of the job's namespace from uploaded files: the wrapped key (RSA
   * methods), or the three tpm2_duplicate outputs and the transfer auth (TPM2_DUPLICATION).
   */
  @POST
  @Path("{namespace}/{job}/import")
  @Consumes(MediaType.MULTIPART_FORM_DATA)
  public Response importVersion(@PathParam("namespace") String namespace, @PathParam("job") String job,
      @RestForm(Csrf.FIELD) String csrfToken, @RestForm String key, @RestForm String algorithm,
      @RestForm String makePrimary, @RestForm("wrapped") FileUpload wrapped, @RestForm("public") FileUpload pub,
      @RestForm("duplicate") FileUpload duplicate, @RestForm("seed") FileUpload seed,
      @RestForm String transferAuthHex) {
    if (!csrf.valid(request, csrfToken)) return refused("/import-jobs/" + namespace + "/" + job);
    String keyName = Pages.nz(key).trim();
    if (keyName.startsWith(namespace + "/")) keyName = keyName.substring(namespace.length() + 1);
    String full = namespace + "/" + keyName; // the job's namespace: the service refuses a key elsewhere anyway
    ImportKeyVersionRequest.Builder b = ImportKeyVersionRequest.newBuilder().setKey(full)
        .setImportJob(namespace + "/" + job).setMakePrimary("on".equals(makePrimary));
    try {
      b.setAlgorithm(Algorithm.valueOf(Pages.nz(algorithm)));
      if (present(wrapped)) {
        b.setWrappedKey(ByteString.copyFrom(read(wrapped, "wrapped key")));
      } else if (present(pub) && present(duplicate) && present(seed)) {
        b.setDuplication(DuplicationBlob.newBuilder().setPublicArea(ByteString.copyFrom(read(pub, "public area")))
            .setDuplicate(ByteString.copyFrom(read(duplicate, "duplicate")))
            .setEncryptedSeed(ByteString.copyFrom(read(seed, "encrypted seed"))));
        if (!Pages.nz(transferAuthHex).isBlank()) {
          try {
            b.setTransferAuth(ByteString.copyFrom(java.util.HexFormat.of().parseHex(transferAuthHex.trim())));
          } catch (IllegalArgumentException notHex) {
            throw new IllegalArgumentException("the transfer auth must be hexadecimal (an even number of 0-9a-f)");
          }
        }
      } else {
        throw new IllegalArgumentException("choose the wrapped key file, or the three files of a duplication "
            + "(public area, duplicate, encrypted seed)");
      }
    } catch (IllegalArgumentException e) {
      return jobPage(namespace, job, keyName, "", "Invalid input: " + e.getMessage(), 400);
    }
    try {
      KeyVersion v = services.keys(token).importKeyVersion(b.build()).getVersion();
      return Pages.redirect(Pages.keyPath(full) + "?done=imported#v" + Integer.toUnsignedString(v.getVersion()));
    } catch (StatusRuntimeException e) {
      return jobPage(namespace, job, keyName, "", Errors.plain(e), Pages.httpStatus(e));
    }
  }

  private static boolean present(FileUpload f) {
    return f != null && f.size() > 0;
  }

  private static byte[] read(FileUpload f, String what) {
    if (f.size() > MAX_UPLOAD) {
      throw new IllegalArgumentException("the " + what + " file is larger than " + MAX_UPLOAD / 1024 + " KiB");
    }
    try {
      return Files.readAllBytes(f.uploadedFile());
    } catch (IOException e) {
      throw new IllegalArgumentException("the " + what + " file could not be read");
    }
  }
}

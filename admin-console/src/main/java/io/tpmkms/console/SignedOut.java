package io.tpmkms.console;

import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateInstance;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;

/** Where RP-initiated logout ends: a public page. */
@Path("/signed-out")
public class SignedOut {
  @Location("signed-out.html") Template signedOut;

  @GET
  @Produces(MediaType.TEXT_HTML)
  public TemplateInstance get() {
    return signedOut.data("title", "Signed out");
  }
}

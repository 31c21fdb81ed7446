package io.tpmkms.key.internal;

import io.quarkus.runtime.StartupEvent;
import io.quarkus.runtime.configuration.ConfigUtils;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/** Says, once the service is up, where it listens and how to call it. */
@ApplicationScoped
public class ReadyBanner {
  private static final Logger LOG = Logger.getLogger(ReadyBanner.class);

  @ConfigProperty(name = "quarkus.grpc.server.host") String host;
  @ConfigProperty(name = "quarkus.grpc.server.port") int port;

  void onStart(@Observes StartupEvent e) {
    if (ConfigUtils.getProfiles().contains("test")) return;
    LOG.infof("tpmkms key service ready: gRPC (plaintext) on %s:%d. Try:%n"
        + "  ./tpmkms --address %s:%d keys create demo/first --purpose encrypt%n"
        + "  echo hello | ./tpmkms --address %s:%d encrypt demo/first | ./tpmkms --address %s:%d decrypt demo/first",
        host, port, host, port, host, port, host, port);
  }
}

package io.tpmkms.key.nodes;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.protection.tpm.Swtpm;
import java.util.Map;

/**
 * A node's TPM for the node tests (ADR 0038): a swtpm made by swtpm_setup with an EK certificate from
 * swtpm_localca, whose issuer certificate stands in for the TPM manufacturer's CA the key service is
 * configured with. The key service itself has no TPM here: node enrollment, attestation and release
 * need none on the service side.
 */
public class NodeSwtpmResource implements QuarkusTestResourceLifecycleManager {
  private static volatile Swtpm node;

  public static Swtpm node() { return node; }

  @Override
  public Map<String, String> start() {
    try {
      node = Swtpm.startWithEkCertificate();
    } catch (Exception e) {
      throw new IllegalStateException("cannot start the node's swtpm", e);
    }
    return Map.of("tpmkms.attestation.ek-ca-file", node.dir.resolve("ca/issuercert.pem").toString(),
        "tpmkms.attestation.freshness", "1m");
  }

  @Override
  public void stop() {
    try {
      if (node != null) node.close();
    } catch (Exception e) {
      // best effort
    }
  }
}

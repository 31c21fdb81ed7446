package io.tpmkms.platform.health;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.util.Optional;

/**
 * The probe port (docs/operations.md, "Install on Kubernetes"): a second, plaintext gRPC port that
 * serves only {@code grpc.health.v1.Health}, for the kubelet's {@code grpc:} probes, which cannot
 * speak TLS to the service port.
 */
@ConfigMapping(prefix = "tpmkms.health")
public interface HealthConfig {
  /** The probe port; unset: no probe port (health is still served on the gRPC port). */
  Optional<Integer> port();

  /** Its listen address: every interface by default, since the kubelet probes the pod's IP. */
  @WithDefault("0.0.0.0")
  String host();

  /** How often readiness checks run (the database, the TPM, the policy service, audit durability). */
  @WithDefault("2s")
  java.time.Duration checkInterval();
}

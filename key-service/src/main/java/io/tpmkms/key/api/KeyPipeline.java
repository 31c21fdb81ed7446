package io.tpmkms.key.api;

import io.tpmkms.key.authz.Authorizer;
import io.tpmkms.key.crypto.CryptoService;
import io.tpmkms.key.error.KeyErrors;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.rpc.Auditing;
import io.tpmkms.platform.rpc.KeyRouter;
import io.tpmkms.platform.rpc.Pipeline;
import io.tpmkms.protection.ProtectionLevel;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;

/**
 * The key service's request pipeline: its authorizer (the policy service),
 * every call audited, its error mapping, and where a key's use runs: a TPM key
 * on the TPM queue, a hot in-process key on the event loop for cheap work, the
 * rest on a worker (ADR 0010).
 */
@ApplicationScoped
public class KeyPipeline {
  @Produces
  @ApplicationScoped
  Pipeline pipeline(Authorizer authorizer, AuditLog audit, CryptoService crypto,
      io.tpmkms.platform.tracing.Tracing tracing) {
    return Pipeline.builder(KeyErrors.GRPC, KeyReason.INTERNAL)
        .authorization(authorizer)
        .auditing(Auditing.everyCall(audit))
        .tracing(tracing)
        .keys((key, light) -> {
          ProtectionLevel level = crypto.cachedLevel(key);
          if (level == ProtectionLevel.TPM) return KeyRouter.Where.TPM_QUEUE;
          if (level == ProtectionLevel.SOFTWARE && light) return KeyRouter.Where.HERE;
          return KeyRouter.Where.WORKER;
        })
        .build();
  }
}

package io.tpmkms.policy.api;

import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.rpc.Auditing;
import io.tpmkms.platform.rpc.Pipeline;
import io.tpmkms.policy.error.PolicyErrors;
import io.tpmkms.policy.error.PolicyReason;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;

/**
 * The policy service's request pipeline: callers authorized by this service's
 * own engine ({@link CallerAuthorizer}), state changes audited in their
 * transaction, its error mapping.
 */
@ApplicationScoped
public class PolicyPipeline {
  @Produces
  @ApplicationScoped
  Pipeline pipeline(CallerAuthorizer callers, AuditLog audit, io.tpmkms.platform.tracing.Tracing tracing) {
    return Pipeline.builder(PolicyErrors.GRPC, PolicyReason.INTERNAL)
        .authorization(callers)
        .auditing(Auditing.changesOnly(audit))
        .tracing(tracing)
        .build();
  }
}

package io.tpmkms.audit.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.Startup;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.checkpoint.Checkpointer;
import jakarta.enterprise.context.ApplicationScoped;

/**
 * The audit chain's meters (issue 18): its length ({@code tpmkms_audit_chain_records}), the events
 * accepted and not yet committed ({@code tpmkms_audit_writer_queued_events}), the latest
 * checkpoint's sequence and time ({@code tpmkms_audit_checkpoint_last_sequence},
 * {@code tpmkms_audit_checkpoint_last_timestamp_seconds}: its age is {@code time() - } that) and
 * failed checkpoint attempts. Append latency is the AppendEvents row of
 * {@code tpmkms_rpc_server_duration_seconds}.
 */
@Startup
@ApplicationScoped
public class AuditMetrics {
  private final io.tpmkms.platform.metrics.Meters meters;

  public AuditMetrics(MeterRegistry registry, AuditWriter writer, Checkpointer checkpointer) {
    meters = new io.tpmkms.platform.metrics.Meters(registry);
    meters.add(Gauge.builder("tpmkms.audit.chain.records", writer, AuditWriter::committedSequence)
        .description("records in the audit chain (the head's sequence)").register(registry));
    meters.add(Gauge.builder("tpmkms.audit.writer.queued.events", writer, AuditWriter::queuedEvents)
        .description("events accepted and not yet committed to the chain").register(registry));
    meters.add(Gauge.builder("tpmkms.audit.checkpoint.last.sequence", checkpointer, Checkpointer::lastSequence)
        .description("the sequence the latest checkpoint covers").register(registry));
    meters.add(Gauge.builder("tpmkms.audit.checkpoint.last.timestamp", checkpointer,
            c -> c.lastEpochSeconds() == 0 ? Double.NaN : c.lastEpochSeconds())
        .baseUnit("seconds").description("when the latest checkpoint was made (Unix time)").register(registry));
    meters.add(FunctionCounter.builder("tpmkms.audit.checkpoint.failures", checkpointer, Checkpointer::failures)
        .description("failed checkpoint attempts (each is retried)").register(registry));
  }

  @jakarta.annotation.PreDestroy
  void unregister() {
    meters.removeAll();
  }
}

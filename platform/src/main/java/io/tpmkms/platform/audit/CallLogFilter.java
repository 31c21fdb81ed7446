package io.tpmkms.platform.audit;

import io.quarkus.logging.LoggingFilter;
import java.util.logging.Filter;
import java.util.logging.LogRecord;
import org.jboss.logmanager.ExtLogRecord;

/**
 * The call a log line belongs to (issue 18): a line logged while a call's code runs — on whatever
 * thread, since the pipeline carries the call's gRPC context to the worker or TPM queue it hands
 * the call to — gets the call's {@code rpc} (full gRPC method), {@code requestId} (the caller's
 * {@code x-request-id} or a generated one, as in the audit event) and {@code principal} (the
 * caller's audit name) in its MDC, and with tracing on the {@code traceId} and {@code spanId} of the
 * span running (ADR 0030). The JSON log format ({@code TPMKMS_LOG_JSON=true}) prints them
 * in {@code mdc}. Never a token, key material or plaintext. (Read from the gRPC context when the
 * line is logged, not kept in the thread's MDC: Quarkus's MDC lives in the Vert.x context, which the
 * transaction and database code switch under a call.)
 */
@LoggingFilter(name = "tpmkms-call")
public final class CallLogFilter implements Filter {
  @Override
  public boolean isLoggable(LogRecord record) {
    if (record instanceof ExtLogRecord ext) {
      CallInfo info;
      try {
        info = CallInfo.current();
      } catch (RuntimeException e) {
        return true;
      }
      if (info != null) {
        ext.putMdc("rpc", info.operation);
        ext.putMdc("requestId", info.requestId);
        ext.putMdc("principal", info.principal);
      }
      io.opentelemetry.api.trace.Span span = io.tpmkms.platform.tracing.Tracing.current();
      if (span != null && span.getSpanContext().isValid()) {
        ext.putMdc("traceId", span.getSpanContext().getTraceId());
        ext.putMdc("spanId", span.getSpanContext().getSpanId());
      }
    }
    return true;
  }
}

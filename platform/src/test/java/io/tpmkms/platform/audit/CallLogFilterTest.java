package io.tpmkms.platform.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.grpc.Context;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.tracing.Tracing;
import java.util.logging.Level;
import org.jboss.logmanager.ExtLogRecord;
import org.junit.jupiter.api.Test;

/** Issue 18: a line logged during a call names the call, and with tracing on its trace and span. */
class CallLogFilterTest {
  static ExtLogRecord line() {
    return new ExtLogRecord(Level.INFO, "something happened", CallLogFilterTest.class.getName());
  }

  @Test
  void aLineInACall_getsTheCallsIdsAndTrace() throws Exception {
    CallInfo info = new CallInfo("tpmkms.key.v1.KeyService/Encrypt", "cli 127.0.0.1", "req-1", Principal.ANONYMOUS);
    Span span = Span.wrap(SpanContext.create("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7",
        TraceFlags.getSampled(), TraceState.getDefault()));
    ExtLogRecord r = line();
    Context.current().withValue(CallInfo.KEY, info).call(() -> Tracing.context(span).call(() ->
        new CallLogFilter().isLoggable(r)));
    assertEquals("tpmkms.key.v1.KeyService/Encrypt", r.getMdc("rpc"));
    assertEquals("req-1", r.getMdc("requestId"));
    assertEquals(info.principal, r.getMdc("principal"));
    assertEquals("4bf92f3577b34da6a3ce929d0e0e4736", r.getMdc("traceId"));
    assertEquals("00f067aa0ba902b7", r.getMdc("spanId"));
  }

  @Test
  void aLineOutsideCalls_getsNothing() {
    ExtLogRecord r = line();
    new CallLogFilter().isLoggable(r);
    assertNull(r.getMdc("rpc"));
    assertNull(r.getMdc("traceId"));
  }
}

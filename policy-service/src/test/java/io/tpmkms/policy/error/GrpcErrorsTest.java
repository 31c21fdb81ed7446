package io.tpmkms.policy.error;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import jakarta.persistence.OptimisticLockException;
import java.sql.SQLException;
import org.hibernate.exception.JDBCConnectionException;
import org.junit.jupiter.api.Test;

/** The one mapping: what each kind of failure answers, and that a cause's text never reaches the caller. */
class GrpcErrorsTest {
  private static ErrorInfo info(StatusRuntimeException e) throws Exception {
    return StatusProto.fromThrowable(e).getDetails(0).unpack(ErrorInfo.class);
  }

  @Test
  void lostOptimisticLock_aborted() throws Exception {
    StatusRuntimeException s = PolicyErrors.GRPC.toStatus(new RuntimeException(new OptimisticLockException("row 7")));
    assertEquals(Status.Code.ABORTED, s.getStatus().getCode());
    assertEquals("CONCURRENT_MODIFICATION", info(s).getReason());
  }

  @Test
  void lostDatabase_unavailable() throws Exception {
    StatusRuntimeException s = PolicyErrors.GRPC.toStatus(new JDBCConnectionException("down", new SQLException("x")));
    assertEquals(Status.Code.UNAVAILABLE, s.getStatus().getCode());
    assertEquals("DATABASE_UNAVAILABLE", info(s).getReason());
  }

  @Test
  void anythingElse_internalWithCorrelationId_causeNotShown() throws Exception {
    StatusRuntimeException s = PolicyErrors.GRPC.toStatus(new IllegalStateException("secret detail"));
    assertEquals(Status.Code.INTERNAL, s.getStatus().getCode());
    ErrorInfo i = info(s);
    assertEquals("INTERNAL", i.getReason());
    assertTrue(i.getMetadataMap().containsKey("correlation_id"));
    assertFalse(s.getStatus().getDescription().contains("secret"));
  }

  @Test
  void policyException_keepsItsCodeReasonAndMetadata() throws Exception {
    StatusRuntimeException s = PolicyErrors.GRPC.toStatus(PolicyErrors.policyNotFound("p1"));
    assertEquals(Status.Code.NOT_FOUND, s.getStatus().getCode());
    assertEquals("POLICY_NOT_FOUND", info(s).getReason());
    assertEquals("p1", info(s).getMetadataMap().get("policy_id"));
  }
}

package io.tpmkms.audit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.tpmkms.platform.rpc.Placement;
import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.testing.RpcTables;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The audit service's RPC table against its descriptor. */
class AuditRpcsTest {
  @Test
  void everyMethodDeclared_bytesFieldsClassified() {
    RpcTables.assertComplete(AuditRpcs.TABLE, Set.of());
  }

  @Test
  void appendOnTheEventLoop_readsOnWorkers() {
    for (Rpc<?, ?> rpc : AuditRpcs.TABLE.rpcs()) {
      String name = rpc.method().getBareMethodName();
      assertEquals(name.equals("AppendEvents") ? Placement.EVENT_LOOP : Placement.WORKER, rpc.placement(), name);
    }
  }
}

package io.tpmkms.policy.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.tpmkms.platform.rpc.Placement;
import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.testing.RpcTables;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The policy service's RPC table against its descriptor. */
class PolicyRpcsTest {
  @Test
  void everyMethodDeclared_noSecrets_noBytesFields() {
    RpcTables.assertComplete(PolicyRpcs.TABLE, Set.of());
    for (Rpc<?, ?> rpc : PolicyRpcs.TABLE.rpcs()) assertEquals(0, rpc.secretFields().length, rpc.fullName());
  }

  @Test
  void decisionsInPlace_databaseOnWorkers_changesMarked() {
    Set<String> inPlace = Set.of("Authorize", "GetSchema", "WhoAmI");
    Set<String> changes = Set.of("CreatePolicy", "UpdatePolicy", "DeletePolicy", "CreateRoleBinding",
        "DeleteRoleBinding");
    for (Rpc<?, ?> rpc : PolicyRpcs.TABLE.rpcs()) {
      String name = rpc.method().getBareMethodName();
      assertEquals(inPlace.contains(name) ? Placement.EVENT_LOOP : Placement.WORKER, rpc.placement(), name);
      assertEquals(changes.contains(name), rpc.changesState(), name);
      assertEquals(name, rpc.action());
    }
  }
}

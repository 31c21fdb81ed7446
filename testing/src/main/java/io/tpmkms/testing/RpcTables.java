package io.tpmkms.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import io.grpc.MethodDescriptor;
import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.platform.rpc.RpcTable;
import io.tpmkms.platform.rpc.Target;
import java.util.Set;
import java.util.TreeSet;

/**
 * What every service's RPC table must satisfy, checked against the generated
 * service descriptor: every method declared exactly once, no declaration of a
 * method that does not exist, every declared secret field a bytes or string
 * field of that request, and every bytes field of every request either
 * declared secret or named as public by the caller (so a new field that
 * carries a secret cannot slip into the audit digest unnoticed).
 */
public final class RpcTables {
  private RpcTables() {}

  /**
   * @param publicBytes "RequestType.field" of bytes fields that are not secret (ciphertexts, AAD,
   *     signatures, nonces)
   */
  public static void assertComplete(RpcTable table, Set<String> publicBytes) {
    assertEquals(Set.of(), table.undeclared(), "methods of " + table.service().getName() + " without a declaration");
    assertEquals(Set.of(), table.strays(), "declarations of no method of " + table.service().getName());
    assertEquals(table.service().getMethods().size(), table.rpcs().size());
    Set<String> unclassified = new TreeSet<>();
    Set<String> seenPublic = new TreeSet<>();
    for (Rpc<?, ?> rpc : table.rpcs()) {
      MethodDescriptor<?, ?> m = table.service().getMethods().stream()
          .filter(x -> x.getFullMethodName().equals(rpc.fullName())).findFirst().orElseThrow();
      assertSame(m, rpc.method(), rpc + " declares another descriptor object than the service's");
      Descriptor in = rpc.requestType();
      Set<String> secret = new TreeSet<>();
      for (FieldDescriptor f : rpc.secretFields()) {
        assertSame(in, f.getContainingType(), rpc + ": secret field " + f.getFullName() + " is not of its request");
        assertSame(f, in.findFieldByName(f.getName()), rpc + ": secret field " + f.getName() + " no longer exists");
        assertTrue(f.getType() == FieldDescriptor.Type.BYTES || f.getType() == FieldDescriptor.Type.STRING,
            rpc + ": secret field " + f.getName() + " is " + f.getType());
        secret.add(f.getName());
      }
      for (FieldDescriptor f : in.getFields()) {
        if (f.getType() != FieldDescriptor.Type.BYTES || secret.contains(f.getName())) continue;
        String name = in.getName() + "." + f.getName();
        if (publicBytes.contains(name)) {
          seenPublic.add(name);
        } else {
          unclassified.add(name);
        }
      }
    }
    assertEquals(Set.of(), unclassified, "bytes fields neither declared secret nor listed as public");
    Set<String> stale = new TreeSet<>(publicBytes);
    stale.removeAll(seenPublic);
    assertEquals(Set.of(), stale, "listed as public but no such bytes field");
  }

  /** Applies a declaration's target function to a request (for the tests' own checks). */
  @SuppressWarnings("unchecked")
  public static <Q extends com.google.protobuf.Message> Target target(Rpc<?, ?> rpc, Q request) {
    return ((Rpc<Q, ?>) rpc).target(request);
  }

  /** Applies a declaration's version function. */
  @SuppressWarnings("unchecked")
  public static int version(Rpc<?, ?> rpc, com.google.protobuf.Message request,
      com.google.protobuf.Message response) {
    return ((Rpc<com.google.protobuf.Message, com.google.protobuf.Message>) rpc).version(request, response);
  }
}

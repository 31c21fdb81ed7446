package io.tpmkms.platform.rpc;

import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Every RPC of one gRPC service, declared once ({@link Rpc}). Tests walk the
 * service descriptor against it: a method without a declaration, or a
 * declaration of no method, fails the build.
 */
public final class RpcTable {
  private final ServiceDescriptor service;
  private final Map<String, Rpc<?, ?>> rpcs = new LinkedHashMap<>();

  private RpcTable(ServiceDescriptor service, List<Rpc<?, ?>> declared) {
    this.service = service;
    for (Rpc<?, ?> r : declared) {
      if (rpcs.put(r.fullName(), r) != null) throw new IllegalStateException(r.fullName() + " declared twice");
    }
  }

  public static RpcTable of(ServiceDescriptor service, Rpc<?, ?>... declared) {
    return new RpcTable(service, List.of(declared));
  }

  public ServiceDescriptor service() { return service; }

  public List<Rpc<?, ?>> rpcs() { return List.copyOf(rpcs.values()); }

  /** The declaration of a method, or null. */
  public Rpc<?, ?> find(String fullMethodName) { return rpcs.get(fullMethodName); }

  /** Methods of the service that have no declaration (must be none). */
  public Set<String> undeclared() {
    Set<String> missing = new TreeSet<>();
    for (MethodDescriptor<?, ?> m : service.getMethods()) {
      if (!rpcs.containsKey(m.getFullMethodName())) missing.add(m.getFullMethodName());
    }
    return missing;
  }

  /** Declarations that name no method of the service (must be none). */
  public Set<String> strays() {
    Set<String> methods = new TreeSet<>();
    for (MethodDescriptor<?, ?> m : service.getMethods()) methods.add(m.getFullMethodName());
    Set<String> stray = new TreeSet<>(rpcs.keySet());
    stray.removeAll(methods);
    return stray;
  }
}

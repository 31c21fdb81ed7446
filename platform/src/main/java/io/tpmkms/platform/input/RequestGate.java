package io.tpmkms.platform.input;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.StatusRuntimeException;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.StatusMapper;
import java.io.InputStream;
import java.util.List;
import java.util.Map;

/**
 * Where every tpmkms service's requests are parsed: a request that does not
 * parse (bad wire format, invalid UTF-8 in a string field, nesting too deep)
 * or has a string containing U+0000 anywhere (repeated, map and nested fields
 * too) never reaches the service. It is answered INVALID_ARGUMENT with reason
 * {@value #INVALID_CHARACTER} (NUL or invalid UTF-8) or {@value #INVALID_REQUEST}
 * (anything else unparseable), after authentication, and changes nothing.
 *
 * <p>Why here and not in an interceptor: grpc-java parses the request before
 * any listener sees it and answers a parse failure UNKNOWN ("Application error
 * processing RPC"), so the parsing itself has to be ours. {@link #strict} gives
 * each method a request marshaller that never throws: it returns a
 * {@link Rejected} marker instead, which the innermost handler (after every
 * interceptor, so an unauthenticated call is still UNAUTHENTICATED) answers.
 * Each service's {@code bindService()} returns {@code strict(...)}.
 *
 * <p>Thread-safe and stateless. The message names the field, never its value.
 */
public final class RequestGate {
  /** A string field holds U+0000 or bytes that are not UTF-8. */
  public static final String INVALID_CHARACTER = "INVALID_CHARACTER";
  /** The request is not a well-formed protobuf message of the method's request type. */
  public static final String INVALID_REQUEST = "INVALID_REQUEST";

  private RequestGate() {}

  /** Why a request was refused before the service saw it. */
  public record Rejected(String reason, String message, Map<String, String> metadata) {}

  /** The same service with requests parsed and checked by this gate. */
  public static ServerServiceDefinition strict(ServerServiceDefinition service) {
    ServiceDescriptor old = service.getServiceDescriptor();
    ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(old.getName())
        .setSchemaDescriptor(old.getSchemaDescriptor());
    List<ServerMethodDefinition<?, ?>> methods = new java.util.ArrayList<>();
    for (ServerMethodDefinition<?, ?> m : service.getMethods()) methods.add(strictMethod(m));
    methods.forEach(m -> descriptor.addMethod(m.getMethodDescriptor()));
    ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(descriptor.build());
    methods.forEach(b::addMethod);
    return b.build();
  }

  @SuppressWarnings("unchecked")
  private static <Q, R> ServerMethodDefinition<Object, R> strictMethod(ServerMethodDefinition<Q, R> m) {
    MethodDescriptor<Q, R> method = m.getMethodDescriptor();
    MethodDescriptor<Object, R> checked = method.toBuilder(new CheckingMarshaller<>(method.getRequestMarshaller()),
        method.getResponseMarshaller()).build();
    ServerCallHandler<Q, R> inner = m.getServerCallHandler();
    ServerCallHandler<Object, R> handler = (call, headers) -> gate((ServerCall<Q, R>) (ServerCall<?, R>) call,
        headers, inner);
    return ServerMethodDefinition.create(checked, handler);
  }

  @SuppressWarnings("unchecked")
  private static <Q, R> ServerCall.Listener<Object> gate(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> inner) {
    ServerCall.Listener<Q> next = inner.startCall(call, headers);
    return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>((ServerCall.Listener<Object>) next) {
      private boolean refused;

      @Override
      public void onMessage(Object message) {
        if (refused) return;
        if (message instanceof Rejected r) {
          refused = true;
          StatusRuntimeException s = StatusMapper.toStatus(null, ErrorCode.INVALID_ARGUMENT, r.reason(),
              r.message(), r.metadata());
          call.close(s.getStatus(), s.getTrailers() == null ? new Metadata() : s.getTrailers());
          return;
        }
        super.onMessage(message);
      }

      @Override
      public void onHalfClose() {
        if (!refused) super.onHalfClose();
      }

      @Override
      public void onReady() {
        if (!refused) super.onReady();
      }
    };
  }

  /** Parses with the method's own marshaller; never throws on bad input. */
  private static final class CheckingMarshaller<Q> implements MethodDescriptor.Marshaller<Object> {
    private final MethodDescriptor.Marshaller<Q> inner;

    CheckingMarshaller(MethodDescriptor.Marshaller<Q> inner) {
      this.inner = inner;
    }

    @SuppressWarnings("unchecked")
    @Override
    public InputStream stream(Object value) {
      return inner.stream((Q) value);
    }

    @Override
    public Object parse(InputStream stream) {
      Q q;
      try {
        q = inner.parse(stream);
      } catch (RuntimeException e) {
        return rejectedParse(e);
      }
      if (q instanceof Message m) {
        String field = firstNul(m, "");
        if (field != null) {
          return new Rejected(INVALID_CHARACTER, "field " + field + " contains U+0000 (NUL), which no string field accepts",
              Map.of("field", field));
        }
      }
      return q;
    }
  }

  static Rejected rejectedParse(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof InvalidProtocolBufferException p && p.getMessage() != null
          && p.getMessage().contains("UTF-8")) {
        return new Rejected(INVALID_CHARACTER, "a string field is not valid UTF-8", Map.of());
      }
    }
    return new Rejected(INVALID_REQUEST, "the request is not a well-formed message of this method's type", Map.of());
  }

  /**
   * The path of the first string field (recursively: repeated, map and nested
   * message fields) that contains U+0000, or null if there is none.
   */
  public static String firstNul(Message m, String prefix) {
    for (Map.Entry<FieldDescriptor, Object> e : m.getAllFields().entrySet()) {
      FieldDescriptor f = e.getKey();
      String path = prefix + f.getName();
      if (f.getJavaType() == FieldDescriptor.JavaType.STRING) {
        if (f.isRepeated()) {
          List<?> values = (List<?>) e.getValue();
          for (int i = 0; i < values.size(); i++) {
            if (((String) values.get(i)).indexOf('\0') >= 0) return path + "[" + i + "]";
          }
        } else if (((String) e.getValue()).indexOf('\0') >= 0) {
          return path;
        }
      } else if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
        if (f.isRepeated()) {
          List<?> values = (List<?>) e.getValue();
          for (int i = 0; i < values.size(); i++) {
            String found = firstNul((Message) values.get(i), path + (f.isMapField() ? "." : "[" + i + "]."));
            if (found != null) return found;
          }
        } else {
          String found = firstNul((Message) e.getValue(), path + ".");
          if (found != null) return found;
        }
      }
    }
    return null;
  }
}

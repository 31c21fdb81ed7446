package io.tpmkms.platform.rpc;

import com.google.protobuf.Descriptors;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import io.grpc.MethodDescriptor;
import io.grpc.protobuf.ProtoMethodDescriptorSupplier;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Function;

/**
 * One RPC, declared once beside its service (as Vault's {@code path_*.go}
 * declare fields, handler and help together): the action the policy decides
 * on, how to get its target from the typed request, which request fields are
 * secret, which key version it touched, and where it runs. The
 * {@link Pipeline} takes every decision about a call from here; nothing looks
 * up a field by its name at run time, so renaming a field in a .proto breaks
 * the build (the generated accessor and {@code *_FIELD_NUMBER} constant
 * change), not authorization, audit or redaction.
 */
public final class Rpc<Q extends Message, R extends Message> {
  /** The key version a call touched: from its response, or from its request when it failed (response null). */
  @FunctionalInterface
  public interface VersionOf<Q, R> {
    int version(Q request, R response);

    /** Calls that touch no key version. */
    static <Q, R> VersionOf<Q, R> none() {
      return (q, r) -> 0;
    }
  }

  /**
   * A batch RPC's items: each item is a request of the single RPC {@code item} (BatchEncrypt's items
   * are EncryptRequests), authorized, run and audited as that RPC declares, one by one.
   *
   * @param field the request's repeated items field (left out of the batch call's own digest)
   * @param max the most items one call may carry
   */
  public record Batch<Q, I extends Message>(Rpc<I, ?> item, Function<Q, java.util.List<I>> items,
      FieldDescriptor field, int max) {}

  private final MethodDescriptor<Q, R> method;
  private final String action;
  private final Batch<Q, ?> batch;
  /** The secret fields and, for a batch, its items field: what the call's own digest leaves out. */
  private final FieldDescriptor[] undigested;
  private final Function<Q, Target> target;
  private final FieldDescriptor[] secret;
  private final VersionOf<Q, R> version;
  private final Placement placement;
  private final boolean changesState;
  private final String fullName;

  private Rpc(Builder<Q, R> b) {
    this.method = b.method;
    this.fullName = b.method.getFullMethodName();
    this.action = b.action != null ? b.action : b.method.getBareMethodName();
    if (b.batchItem != null) {
      FieldDescriptor f = inputType(b.method).findFieldByNumber(b.batchField);
      if (f == null || !f.isRepeated() || f.getType() != FieldDescriptor.Type.MESSAGE
          || f.getMessageType() != b.batchItem.requestType()) {
        throw new IllegalStateException(fullName + ": field " + b.batchField + " is not a repeated "
            + b.batchItem.requestType().getFullName());
      }
      @SuppressWarnings({"unchecked", "rawtypes"})
      Batch<Q, ?> declared = new Batch(b.batchItem, b.batchItems, f, b.batchMax);
      this.batch = declared;
      b.target = q -> Target.items();
      b.placement = Placement.WORKER;
    } else {
      this.batch = null;
    }
    this.target = Objects.requireNonNull(b.target, () -> fullName + ": no target declared");
    this.version = b.version != null ? b.version : VersionOf.none();
    this.placement = Objects.requireNonNull(b.placement, () -> fullName + ": no placement declared");
    this.changesState = b.changesState;
    Descriptors.Descriptor input = inputType(b.method);
    this.secret = Arrays.stream(b.secret).mapToObj(n -> {
      FieldDescriptor f = input.findFieldByNumber(n);
      if (f == null) {
        throw new IllegalStateException(fullName + ": secret field number " + n + " is not a field of "
            + input.getFullName());
      }
      return f;
    }).toArray(FieldDescriptor[]::new);
    this.undigested = batch == null ? secret : java.util.stream.Stream.concat(Arrays.stream(secret),
        java.util.stream.Stream.of(batch.field())).toArray(FieldDescriptor[]::new);
  }

  public static <Q extends Message, R extends Message> Builder<Q, R> of(MethodDescriptor<Q, R> method) {
    return new Builder<>(method);
  }

  public MethodDescriptor<Q, R> method() { return method; }

  /** "tpmkms.key.v1.KeyService/Encrypt". */
  public String fullName() { return fullName; }

  /** The action the policy decides on (the RPC's name unless declared otherwise). */
  public String action() { return action; }

  public Target target(Q request) { return target.apply(request); }

  /** The request fields cleared before the audit digest and never logged. */
  public FieldDescriptor[] secretFields() { return secret.clone(); }

  /** What the call's own audit digest leaves out: its secret fields, and a batch's items (each has its own). */
  FieldDescriptor[] secret() { return undigested; }

  /** The batch's items, when this is a batch RPC; null otherwise. */
  public Batch<Q, ?> batch() { return batch; }

  public int version(Q request, R response) { return version.version(request, response); }

  public Placement placement() { return placement; }

  /** Whether the call changes state (its audit event is written in the change's own transaction). */
  public boolean changesState() { return changesState; }

  /** The request message type, from the generated service's schema. */
  public Descriptors.Descriptor requestType() { return inputType(method); }

  /** The response message type. */
  public Descriptors.Descriptor responseType() {
    return ((ProtoMethodDescriptorSupplier) method.getSchemaDescriptor()).getMethodDescriptor().getOutputType();
  }

  static Descriptors.Descriptor inputType(MethodDescriptor<?, ?> method) {
    if (method.getSchemaDescriptor() instanceof ProtoMethodDescriptorSupplier s) {
      return s.getMethodDescriptor().getInputType();
    }
    throw new IllegalStateException(method.getFullMethodName() + " has no protobuf schema");
  }

  @Override
  public String toString() { return fullName; }

  public static final class Builder<Q extends Message, R extends Message> {
    private final MethodDescriptor<Q, R> method;
    private String action;
    private Function<Q, Target> target;
    private int[] secret = new int[0];
    private VersionOf<Q, R> version;
    private Placement placement;
    private boolean changesState;
    private Rpc<?, ?> batchItem;
    private Function<Q, ? extends java.util.List<?>> batchItems;
    private int batchField;
    private int batchMax;

    private Builder(MethodDescriptor<Q, R> method) {
      this.method = Objects.requireNonNull(method);
    }

    /** The policy action, when it is not the RPC's name. */
    public Builder<Q, R> action(String action) {
      this.action = action;
      return this;
    }

    public Builder<Q, R> target(Function<Q, Target> target) {
      this.target = target;
      return this;
    }

    /** Secret request fields, by their generated {@code *_FIELD_NUMBER} constants. */
    public Builder<Q, R> secret(int... fieldNumbers) {
      this.secret = fieldNumbers.clone();
      return this;
    }

    public Builder<Q, R> version(VersionOf<Q, R> version) {
      this.version = version;
      return this;
    }

    public Builder<Q, R> runs(Placement placement) {
      this.placement = placement;
      return this;
    }

    /** The call changes state: its event is written in the change's transaction (the audit outbox). */
    public Builder<Q, R> changesState() {
      this.changesState = true;
      return this;
    }

    /**
     * A batch of the single RPC {@code item}: its request's repeated field {@code itemsField} holds
     * 1 to {@code max} of {@code item}'s requests. The batch call has no target of its own (each item
     * is decided on its key, as {@code item} declares) and runs on a worker (each item where
     * {@code item} says: a TPM key's items on the TPM queue).
     */
    public <I extends Message> Builder<Q, R> batchOf(Rpc<I, ?> item, int itemsField,
        Function<Q, java.util.List<I>> items, int max) {
      if (max < 1) throw new IllegalArgumentException("max " + max);
      this.batchItem = item;
      this.batchItems = items;
      this.batchField = itemsField;
      this.batchMax = max;
      return this;
    }

    public Rpc<Q, R> build() {
      return new Rpc<>(this);
    }
  }
}

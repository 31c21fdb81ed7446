package io.tpmkms.platform.audit;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import io.grpc.Context;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.UUID;
import io.tpmkms.proto.audit.v1.Decision;
import io.tpmkms.platform.auth.Principal;

/**
 * What the audit trail needs to know about the call being served: set by
 * {@link CallInfoInterceptor} in the gRPC {@link Context} and carried along
 * when the call moves to a worker. Mutable only in {@link #recorded}, which
 * says the call's event was already written in the same transaction as its
 * state change.
 */
public final class CallInfo {
  static final Context.Key<CallInfo> KEY = Context.key("tpmkms-call-info");

  private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(() -> {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  });

  public final String eventId = randomId();
  public final String operation;
  public final String client;
  public final String requestId;
  public final String principal;
  /** The authenticated caller (anonymous with authentication off, null for internal actions). */
  public final Principal caller;
  private volatile String key = "";
  private volatile Decision decision = Decision.NOT_EVALUATED;
  private volatile String decisionReason = "";
  private volatile byte[] requestDigest = new byte[0];
  private volatile String details = "";
  private volatile boolean recorded;

  CallInfo(String operation, String client, String requestId, Principal caller) {
    this(operation, client, requestId, caller, caller == null ? "system" : caller.auditName());
  }

  private CallInfo(String operation, String client, String requestId, Principal caller, String principal) {
    this.operation = operation;
    this.client = client;
    this.requestId = requestId;
    this.caller = caller;
    this.principal = principal;
  }

  /** The principal written for a call refused before anyone was authenticated (no or bad token). */
  public static final String UNAUTHENTICATED = "unauthenticated";

  /**
   * A call refused by authentication (no, bad or oversized token): nobody is
   * known, so its principal is {@value #UNAUTHENTICATED}; its decision DENY
   * with {@code why}. The token itself is never part of it.
   */
  public static CallInfo unauthenticated(String operation, String client, String requestId, String why) {
    CallInfo info = new CallInfo(operation, client,
        requestId == null || requestId.isEmpty() || requestId.length() > 128 ? randomId() : requestId, null,
        UNAUTHENTICATED);
    info.decided(Decision.DENY, why);
    return info;
  }

  /** The call being served on this thread, or null outside a gRPC call (the scheduler). */
  public static CallInfo current() {
    return KEY.get();
  }

  /** An internal action (scheduled rotation, scheduled destruction). */
  public static CallInfo system(String operation) {
    return new CallInfo(operation, "tpmkms", randomId(), null);
  }

  /**
   * The record of item {@code index} (0-based) of a batch call: the same operation, caller, client
   * and request id, an event id of its own, and "item i of n" (1-based) as its details; its key,
   * digest and decision are set for the item.
   */
  public CallInfo item(int index, int count) {
    CallInfo item = new CallInfo(operation, client, requestId, caller, principal);
    item.details = "item " + (index + 1) + " of " + count;
    return item;
  }

  /** The current context with this call's info in it (how the interceptor hands it on; tests). */
  public Context inContext() {
    return Context.current().withValue(KEY, this);
  }

  /**
   * Takes the key name and a digest of the request: SHA-256 of its
   * deterministic serialization with its secret fields cleared (docs/audit.md).
   * Which fields are secret, and which key the call is about, come from the
   * RPC's declaration ({@code io.tpmkms.platform.rpc.Rpc}), not from field names.
   *
   * <p>Every audited call runs this, so it avoids what costs: the request is
   * copied only when a secret field is set; the bytes are written into a
   * per-thread buffer, not a stream.
   */
  public void request(Message request, FieldDescriptor[] secret, String key) {
    Message cleared = request;
    for (FieldDescriptor f : secret) {
      if (f.isRepeated() ? request.getRepeatedFieldCount(f) > 0 : request.hasField(f)) {
        Message.Builder b = request.toBuilder();
        for (FieldDescriptor s : secret) b.clearField(s);
        cleared = b.build();
        break;
      }
    }
    int size = cleared.getSerializedSize();
    byte[] buf = BUFFER.get();
    if (buf.length < size) {
      buf = new byte[Math.max(size, buf.length * 2)];
      if (buf.length <= MAX_KEPT_BUFFER) BUFFER.set(buf);
    }
    try {
      var cos = com.google.protobuf.CodedOutputStream.newInstance(buf, 0, size);
      cos.useDeterministicSerialization();
      cleared.writeTo(cos);
      cos.checkNoSpaceLeft();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
    MessageDigest md = SHA256.get();
    md.update(buf, 0, size);
    requestDigest = md.digest();
    this.key = key == null ? "" : key;
  }

  /** Requests above this size get a buffer of their own (a thread keeps no more than this). */
  private static final int MAX_KEPT_BUFFER = 256 * 1024;
  private static final ThreadLocal<byte[]> BUFFER = ThreadLocal.withInitial(() -> new byte[4096]);

  /**
   * A version-7 UUID (RFC 9562: 48 bits of Unix milliseconds, then 74 random
   * bits) from a per-thread generator. Ids must be unique, not secret: this
   * avoids the process-wide SecureRandom behind UUID.randomUUID() on every
   * call; and ids that grow with time land at the right-hand end of the audit
   * service's event id index instead of on a random page of it.
   */
  public static String randomId() {
    java.util.concurrent.ThreadLocalRandom r = java.util.concurrent.ThreadLocalRandom.current();
    long hi = (System.currentTimeMillis() << 16) | 0x7000L | (r.nextLong() & 0x0FFFL);
    long lo = (r.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
    return new UUID(hi, lo).toString();
  }

  public String key() { return key; }

  /** Records the authorization decision of this call and why (the matching rules). */
  public void decided(Decision decision, String reason) {
    this.decision = decision;
    this.decisionReason = reason == null ? "" : reason;
  }

  public Decision decision() { return decision; }

  public String decisionReason() { return decisionReason; }

  /** The RPC's simple name ("Encrypt"), the action the policy service decides on. */
  public String method() {
    int slash = operation.lastIndexOf('/');
    return slash < 0 ? operation : operation.substring(slash + 1);
  }

  public byte[] requestDigest() { return requestDigest.clone(); }

  /** What the call asked, readable (e.g. a query's filters), for its audit event; empty by default. */
  public String details() { return details; }

  public void details(String details) {
    this.details = details == null ? "" : details;
  }

  public boolean recorded() { return recorded; }

  void markRecorded() { recorded = true; }
}

package io.tpmkms.platform.rpc;

/**
 * Thrown on an event-loop thread by code that would have to block (read the
 * database) before it has any effect; the {@link Pipeline} re-runs the call on
 * a worker. Carries no stack.
 */
public final class MustBlock extends RuntimeException {
  public MustBlock() {
    super("must run on a worker thread", null, false, false);
  }
}

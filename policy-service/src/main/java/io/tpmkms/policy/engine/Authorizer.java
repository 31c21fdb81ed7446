package io.tpmkms.policy.engine;

import io.quarkus.runtime.StartupEvent;
import io.tpmkms.policy.PolicyConfig;
import io.tpmkms.policy.store.PolicyStore;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * The engine with the state in force: decides from memory, and keeps the
 * state at the store's revision. A poller reads the revision every
 * {@code tpmkms.policy.reload-interval}; when it moved (a change on any
 * replica) the whole state is read and compiled again, and then swapped in
 * at once. A change made through this replica is reloaded right after its
 * commit ({@link #refresh}).
 *
 * <p>If the database cannot be read, the last state stays in force (logged);
 * decisions never wait for the database. Thread-safe.
 */
@ApplicationScoped
public class Authorizer {
  private static final Logger LOG = Logger.getLogger(Authorizer.class);

  private final PolicyEngine engine;
  private final PolicyStore store;
  private final PolicyConfig config;
  /** Revision -1 until the first load: nothing is bound, everything is denied. */
  private volatile CompiledPolicies state;
  private ScheduledExecutorService poller;
  private volatile boolean failing;

  public Authorizer(PolicyStore store, PolicyConfig config) {
    this.store = store;
    this.config = config;
    this.engine = PolicyEngine.load();
    this.state = engine.compile(-1, java.util.List.of(), java.util.List.of());
  }

  void start(@Observes @Priority(10) StartupEvent e) {
    if (config.bootstrap() && store.bootstrapIfNeeded()) {
      LOG.info("empty policy store bootstrapped: realm roles tpmkms-admin, -user, -duplicator, -auditor, -viewer"
          + " have their role on the deployment");
    }
    refresh();
    // The first decision loads and warms the native engine: pay for it here, not in a caller's call.
    decide(AuthzRequest.of(io.tpmkms.platform.auth.Principal.ANONYMOUS, "GetKey", ResourceRef.key("warm-up", "k")));
    LOG.infof("authorization state at revision %d: %d role bindings, %d policies", state.revision(),
        state.bindingCount(), state.policyCount());
    poller = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "policy-reload");
      t.setDaemon(true);
      return t;
    });
    long every = Math.max(10, config.reloadInterval().toMillis());
    poller.scheduleWithFixedDelay(this::poll, every, every, TimeUnit.MILLISECONDS);
  }

  void stop(@Observes io.quarkus.runtime.ShutdownEvent e) {
    if (poller != null) poller.shutdownNow();
  }

  public PolicyEngine engine() { return engine; }

  public CompiledPolicies state() { return state; }

  /** Decides against the state in force. */
  public Decision decide(AuthzRequest request) {
    return engine.authorize(state, request);
  }

  /** Reads and compiles the store now (after a local change, and when the revision moved). */
  public synchronized void refresh() {
    PolicyStore.Snapshot s = store.snapshot();
    if (s.revision() == state.revision()) return;
    state = engine.compile(s.revision(), s.bindings(), s.policies());
    LOG.debugf("authorization state now at revision %d", s.revision());
  }

  private void poll() {
    try {
      if (store.revision() != state.revision()) refresh();
      if (failing) LOG.info("policy store readable again");
      failing = false;
    } catch (RuntimeException ex) {
      if (!failing) LOG.warnf("cannot read the policy store (%s); the state of revision %d stays in force",
          ex.getMessage(), state.revision());
      failing = true;
    }
  }
}

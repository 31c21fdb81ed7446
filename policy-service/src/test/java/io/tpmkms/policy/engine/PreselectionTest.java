package io.tpmkms.policy.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.platform.auth.Principal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.jboss.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * Pre-selection is exact: over random bindings, policies and requests, the
 * engine decides exactly as Cedar does with every binding in the set (same
 * decision, same reasons). Also prints what the pre-selection saves
 * (ADR 0014), without a timed assertion.
 */
class PreselectionTest {
  private static final Logger LOG = Logger.getLogger(PreselectionTest.class);
  static final PolicyEngine ENGINE = PolicyEngineTest.ENGINE;
  static final String[] GROUPS = {"/a", "/a/b", "/a/b/c", "/d", "/d/e"};
  static final String[] REALM_ROLES = {"r1", "r2", "tpmkms-user"};
  static final String[] CLIENTS = {"c1", "c2"};
  static final String[] NAMESPACES = {"n1", "n2", "n3"};
  static final String[] KEYS = {"k1", "k2"};

  @Test
  void preselectedDecisions_equalWholeSetDecisions() {
    Random rnd = new Random(20261121);
    CompiledPolicies state = randomState(rnd, 1000);
    List<String> actions = ENGINE.actions().names();
    int allowed = 0;
    for (int i = 0; i < 400; i++) {
      Principal p = randomPrincipal(rnd);
      String action = actions.get(rnd.nextInt(actions.size()));
      ResourceRef r = resourceFor(rnd, ENGINE.actions().get(action));
      Map<String, String> ctx = rnd.nextBoolean() ? Map.of("protection_level", rnd.nextBoolean() ? "TPM" : "SOFTWARE")
          : Map.of();
      AuthzRequest q = new AuthzRequest(p, action, r, ctx);
      Decision fast = ENGINE.authorize(state, q);
      Decision reference = ENGINE.authorizeWithoutPreselection(state, q);
      assertEquals(reference, fast, () -> "request " + q);
      if (fast.allowed()) allowed++;
    }
    assertTrue(allowed > 40 && allowed < 360, "both outcomes exercised: " + allowed + " of 400 allowed");
  }

  @Test
  void report_costOfTheWholeSet() {
    Random rnd = new Random(7);
    for (int n : new int[] {10, 1000}) {
      CompiledPolicies state = randomState(rnd, n);
      Principal p = new Principal("u1", "u1", "c1", List.of("r1"), List.of(), List.of("/a/b/c"), "i");
      AuthzRequest q = AuthzRequest.of(p, "Encrypt", ResourceRef.key("n1", "k1"));
      LOG.infof("%4d bindings: pre-selected p50 %.0f us, whole set p50 %.0f us", n,
          p50(() -> ENGINE.authorize(state, q)), p50(() -> ENGINE.authorizeWithoutPreselection(state, q)));
      assertEquals(ENGINE.authorizeWithoutPreselection(state, q), ENGINE.authorize(state, q));
    }
  }

  private static double p50(Runnable r) {
    for (int i = 0; i < 30; i++) r.run();
    long[] t = new long[101];
    for (int i = 0; i < t.length; i++) {
      long s = System.nanoTime();
      r.run();
      t[i] = System.nanoTime() - s;
    }
    Arrays.sort(t);
    return t[50] / 1e3;
  }

  static CompiledPolicies randomState(Random rnd, int n) {
    List<Binding> bindings = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      SubjectRef s = switch (rnd.nextInt(5)) {
        case 0 -> SubjectRef.of(SubjectRef.Kind.USER, "u" + rnd.nextInt(30));
        case 1 -> SubjectRef.of(SubjectRef.Kind.GROUP, GROUPS[rnd.nextInt(GROUPS.length)]);
        case 2 -> SubjectRef.of(SubjectRef.Kind.REALM_ROLE, REALM_ROLES[rnd.nextInt(REALM_ROLES.length)]);
        case 3 -> SubjectRef.of(SubjectRef.Kind.CLIENT_ROLE, CLIENTS[rnd.nextInt(CLIENTS.length)] + "/x");
        default -> SubjectRef.of(SubjectRef.Kind.CLIENT, CLIENTS[rnd.nextInt(CLIENTS.length)]);
      };
      // most bindings on resources the requests never touch, as in a large deployment
      ResourceRef r = rnd.nextInt(100) < 97 ? ResourceRef.namespace("far" + rnd.nextInt(500)) : randomResource(rnd);
      bindings.add(new Binding("b" + i, s, Role.values()[rnd.nextInt(Role.values().length)], r));
    }
    List<OperatorPolicy> policies = List.of(
        new OperatorPolicy("no-decrypt-d", 1, "", "forbid(principal in Tpmkms::Group::\"/d\", "
            + "action == Tpmkms::Action::\"Decrypt\", resource);"),
        new OperatorPolicy("c1-signs-on-tpm", 2, "", "permit(principal in Tpmkms::Client::\"c1\", "
            + "action == Tpmkms::Action::\"Sign\", resource in Tpmkms::Namespace::\"n1\") "
            + "when { context has protection_level && context.protection_level == \"TPM\" };"),
        new OperatorPolicy("no-software-n2", 1, "", "forbid(principal, action in Tpmkms::Action::\"role:user\", "
            + "resource in Tpmkms::Namespace::\"n2\") "
            + "when { context has protection_level && context.protection_level == \"SOFTWARE\" };"));
    return ENGINE.compile(1, bindings, policies);
  }

  static ResourceRef randomResource(Random rnd) {
    return switch (rnd.nextInt(3)) {
      case 0 -> ResourceRef.DEPLOYMENT;
      case 1 -> ResourceRef.namespace(NAMESPACES[rnd.nextInt(NAMESPACES.length)]);
      default -> ResourceRef.key(NAMESPACES[rnd.nextInt(NAMESPACES.length)], KEYS[rnd.nextInt(KEYS.length)]);
    };
  }

  static ResourceRef resourceFor(Random rnd, ActionCatalog.Action a) {
    while (true) {
      ResourceRef r = randomResource(rnd);
      if (a.resourceKinds().contains(r.kind())) return r;
    }
  }

  static Principal randomPrincipal(Random rnd) {
    List<String> groups = new ArrayList<>();
    if (rnd.nextBoolean()) groups.add(GROUPS[rnd.nextInt(GROUPS.length)]);
    List<String> roles = new ArrayList<>();
    if (rnd.nextBoolean()) roles.add(REALM_ROLES[rnd.nextInt(REALM_ROLES.length)]);
    String client = CLIENTS[rnd.nextInt(CLIENTS.length)];
    List<String> clientRoles = rnd.nextBoolean() ? List.of(client + "/x") : List.of();
    return new Principal("u" + rnd.nextInt(30), "", client, roles, clientRoles, groups, "i");
  }
}

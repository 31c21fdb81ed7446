package io.tpmkms.policy.engine;

import com.cedarpolicy.BasicAuthorizationEngine;
import com.cedarpolicy.model.AuthorizationRequest;
import com.cedarpolicy.model.AuthorizationResponse;
import com.cedarpolicy.model.AuthorizationSuccessResponse;
import com.cedarpolicy.model.DetailedError;
import com.cedarpolicy.model.ValidationRequest;
import com.cedarpolicy.model.ValidationResponse;
import com.cedarpolicy.model.entity.Entity;
import com.cedarpolicy.model.exception.AuthException;
import com.cedarpolicy.model.exception.InternalException;
import com.cedarpolicy.model.policy.LinkValue;
import com.cedarpolicy.model.policy.Policy;
import com.cedarpolicy.model.policy.PolicySet;
import com.cedarpolicy.model.schema.Schema;
import com.cedarpolicy.value.EntityTypeName;
import com.cedarpolicy.value.EntityUID;
import com.cedarpolicy.value.PrimString;
import com.cedarpolicy.value.Value;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.error.ErrorCode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The Cedar authorization engine of tpmkms (ADR 0014). Decides requests
 * against a {@link CompiledPolicies} state, validates operator policies
 * against the schema ({@code tpmkms.cedarschema}), and explains every
 * decision by mapping Cedar's determining policy ids back to binding ids and
 * policy versions.
 *
 * <p>Role bindings are links of one template per role
 * ({@code permit(principal in ?principal, action in Tpmkms::Action::"role:<r>", resource in ?resource)}).
 * cedar-java hands the whole policy set to the native library on every call
 * unless the set is cached, and even a cached set of 1,000 links costs
 * milliseconds, so each decision uses only the links that can match: those
 * whose subject is one of the principal's entities, whose resource is the
 * resource or one of its ancestors, and whose role contains the action —
 * plus every operator policy. That selection is exact (no link left out could
 * match), and Cedar still makes the decision.
 *
 * <p>Thread-safe and stateless apart from the native caches. Failures:
 * malformed input fails {@link ServiceException} INVALID_ARGUMENT; a failure
 * of the native library is an {@link IllegalStateException} (INTERNAL).
 */
public final class PolicyEngine {
  public static final String SCHEMA_RESOURCE = "/io/tpmkms/policy/engine/tpmkms.cedarschema";
  /** Request context names a policy may read (all optional strings). */
  public static final Set<String> CONTEXT_NAMES = Set.of("client_address", "protection_level", "algorithm", "purpose");
  public static final int MAX_POLICY_TEXT = 64 * 1024;
  static final int MAX_CONTEXT_VALUE = 1024;

  private static final Map<String, EntityTypeName> TYPES = new java.util.concurrent.ConcurrentHashMap<>();
  private static final EntityTypeName USER = type("User");
  private static final EntityTypeName GROUP = type("Group");
  private static final EntityTypeName REALM_ROLE = type("RealmRole");
  private static final EntityTypeName CLIENT_ROLE = type("ClientRole");
  private static final EntityTypeName CLIENT = type("Client");
  private static final EntityTypeName DEPLOYMENT = type("Deployment");
  private static final EntityTypeName NAMESPACE = type("Namespace");
  private static final EntityTypeName KEY = type("Key");
  private static final EntityTypeName ACTION = type("Action");

  private final BasicAuthorizationEngine cedar = new BasicAuthorizationEngine();
  private final String schemaText;
  private final Schema schema;
  private final ActionCatalog actions;
  private final Set<Policy> templates;
  private final Map<String, EntityUID> actionUids = new HashMap<>();

  private PolicyEngine(String schemaText) {
    try {
      this.schemaText = schemaText;
      this.schema = Schema.parse(Schema.JsonOrCedar.Cedar, schemaText);
      this.actions = ActionCatalog.fromSchemaJson(schema.toJsonFormat());
      this.schema.cache();
      Set<Policy> t = new LinkedHashSet<>();
      for (Role r : Role.values()) {
        t.add(new Policy("permit(principal in ?principal, action in Tpmkms::Action::\"" + r.actionGroup()
            + "\", resource in ?resource);", templateId(r)));
      }
      this.templates = Set.copyOf(t);
      for (String a : actions.names()) actionUids.put(a, ACTION.of(a));
    } catch (Exception e) {
      throw new IllegalStateException("cannot load the Cedar schema", e);
    }
  }

  /** The engine with the schema shipped in this jar. */
  public static PolicyEngine load() {
    try (InputStream in = PolicyEngine.class.getResourceAsStream(SCHEMA_RESOURCE)) {
      if (in == null) throw new IllegalStateException("missing " + SCHEMA_RESOURCE);
      return new PolicyEngine(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The schema in Cedar syntax, as shipped. */
  public String schemaText() { return schemaText; }

  public ActionCatalog actions() { return actions; }

  static String templateId(Role r) { return "template/" + r.label(); }

  static String linkId(String bindingId) { return "binding/" + bindingId; }

  static String policyCedarId(String policyId) { return "policy/" + policyId; }

  // ---- validation -----------------------------------------------------------------------------

  /**
   * Checks an operator policy: exactly one static policy (permit or forbid,
   * no template slots), valid against the schema in strict mode. Returns the
   * validator's messages; empty when valid.
   */
  public List<String> validate(String text) {
    if (text == null || text.isBlank()) return List.of("the policy text is empty");
    if (text.length() > MAX_POLICY_TEXT) return List.of("the policy text is longer than " + MAX_POLICY_TEXT + " characters");
    PolicySet parsed;
    try {
      parsed = PolicySet.parsePolicies(text);
    } catch (InternalException e) {
      return List.of(messages(e));
    } catch (RuntimeException e) {
      return List.of("the policy does not parse: " + e.getMessage());
    }
    if (parsed.getNumTemplates() > 0) {
      return List.of("a policy may not have ?principal or ?resource slots: grant roles with a role binding");
    }
    if (parsed.getNumPolicies() != 1) {
      return List.of("exactly one policy (one permit or forbid) per Policy; found " + parsed.getNumPolicies());
    }
    try {
      ValidationResponse r = cedar.validate(new ValidationRequest(schema, parsed));
      List<String> errors = new ArrayList<>();
      r.errors.ifPresent(list -> list.forEach(e -> errors.add(describe(e))));
      r.success.ifPresent(s -> s.validationErrors.forEach(e -> errors.add(describe(e.getError()))));
      if (errors.isEmpty() && !r.validationPassed()) errors.add("the policy does not validate against the schema");
      return errors;
    } catch (AuthException e) {
      return List.of(messages(e));
    }
  }

  /** {@link #validate} as a precondition: INVALID_ARGUMENT (POLICY_INVALID) with the messages. */
  public void requireValid(String text) {
    List<String> errors = validate(text);
    if (!errors.isEmpty()) {
      throw ServiceException.invalid(PolicyReason.POLICY_INVALID, "invalid policy: " + String.join("; ", errors));
    }
  }

  // ---- compiling ------------------------------------------------------------------------------

  /**
   * The state for one store revision. Operator policies were validated when
   * saved; one that no longer parses (never expected) fails the whole
   * compile so the previous state stays in force.
   */
  public CompiledPolicies compile(long revision, Collection<Binding> bindings, Collection<OperatorPolicy> policies) {
    Map<String, Binding> byId = new LinkedHashMap<>();
    for (Binding b : bindings) byId.put(b.id(), b);
    Map<String, OperatorPolicy> byCedarId = new LinkedHashMap<>();
    Set<Policy> statics = new HashSet<>();
    for (OperatorPolicy p : policies) {
      String id = policyCedarId(p.id());
      byCedarId.put(id, p);
      statics.add(new Policy(p.text(), id));
    }
    return new CompiledPolicies(revision, byId, CompiledPolicies.index(byId.values()), byCedarId,
        Set.copyOf(statics), templates);
  }

  // ---- deciding -------------------------------------------------------------------------------

  /**
   * Decides one request. Fails INVALID_ARGUMENT for an unknown action
   * (INVALID_ACTION), a resource kind the action does not apply to
   * (INVALID_RESOURCE), an unknown context name (INVALID_CONTEXT) or a
   * principal without subject (INVALID_PRINCIPAL).
   */
  public Decision authorize(CompiledPolicies state, AuthzRequest request) {
    return authorize(state, request, true);
  }

  /**
   * The reference the pre-selection is tested against: the same decision with
   * every binding passed to Cedar (uncached, slow). Tests only.
   */
  Decision authorizeWithoutPreselection(CompiledPolicies state, AuthzRequest request) {
    return authorize(state, request, false);
  }

  private Decision authorize(CompiledPolicies state, AuthzRequest request, boolean preselect) {
    ActionCatalog.Action action = checkRequest(request);
    Principal p = request.principal();

    // ---- entities of the request: the principal with everything it is in, the resource chain
    Set<Entity> entities = new HashSet<>();
    Set<EntityUID> parents = new HashSet<>();
    List<String[]> principalKeys = new ArrayList<>();
    principalKeys.add(new String[] {"User", p.subject()});
    Set<String> groupsSeen = new HashSet<>();
    for (String g : p.groups()) {
      if (g == null || g.isEmpty()) continue;
      parents.add(GROUP.of(g));
      addGroupChain(g, entities, groupsSeen, principalKeys);
    }
    for (String r : p.realmRoles()) {
      EntityUID u = REALM_ROLE.of(r);
      parents.add(u);
      entities.add(new Entity(u));
      principalKeys.add(new String[] {"RealmRole", r});
    }
    for (String r : p.clientRoles()) {
      EntityUID u = CLIENT_ROLE.of(r);
      parents.add(u);
      entities.add(new Entity(u));
      principalKeys.add(new String[] {"ClientRole", r});
    }
    if (!p.clientId().isEmpty()) {
      EntityUID u = CLIENT.of(p.clientId());
      parents.add(u);
      entities.add(new Entity(u));
      principalKeys.add(new String[] {"Client", p.clientId()});
    }
    EntityUID principal = USER.of(p.subject());
    Map<String, Value> attrs = Map.of(
        "username", new PrimString(p.username()),
        "client_id", new PrimString(p.clientId()),
        "issuer", new PrimString(p.issuer()));
    entities.add(new Entity(principal, attrs, parents));
    ResourceRef res = request.resource();
    EntityUID resource = addResourceChain(res, entities);

    // ---- pre-selection: the links that can match, exactly
    Set<ResourceRef> resourcePath = new HashSet<>(res.selfAndAncestors());
    List<Binding> selected = new ArrayList<>();
    Map<Binding, List<LinkValue>> linkValues = new HashMap<>();
    for (String[] k : principalKeys) {
      List<Binding> bs = state.bySubject.get(CompiledPolicies.subjectKey(k[0], k[1]));
      if (bs == null) continue;
      for (Binding b : bs) {
        if (action.roles().contains(b.role()) && resourcePath.contains(b.resource())) selected.add(b);
      }
    }
    selected.sort(java.util.Comparator.comparing(Binding::id));
    if (!preselect) selected = new ArrayList<>(state.bindings.values());
    for (Binding b : selected) {
      linkValues.put(b, List.of(new LinkValue("?principal", subjectUid(b.subject())),
          new LinkValue("?resource", resourceUid(b.resource()))));
    }
    PolicySet set = preselect ? state.policySet(selected, linkValues) : state.uncachedPolicySet(selected, linkValues);

    Map<String, Value> context = new HashMap<>();
    request.context().forEach((k, v) -> context.put(k, new PrimString(v)));
    AuthorizationRequest ar = new AuthorizationRequest(principal, actionUids.get(action.name()), resource,
        Optional.of(context), Optional.of(schema), true);
    AuthorizationResponse response;
    try {
      response = cedar.isAuthorized(ar, set, entities);
    } catch (AuthException e) {
      throw new IllegalStateException("Cedar failed: " + e.getMessage(), e);
    }
    if (response.success.isEmpty()) {
      String why = response.errors.map(l -> String.join("; ", l.stream().map(PolicyEngine::describe).toList()))
          .orElse("the request does not fit the schema");
      throw ServiceException.invalid(PolicyReason.INVALID_REQUEST, "request rejected by the schema: " + why);
    }
    return explain(state, request, response.success.get());
  }

  private Decision explain(CompiledPolicies state, AuthzRequest request, AuthorizationSuccessResponse s) {
    boolean allowed = s.getDecision() == AuthorizationSuccessResponse.Decision.Allow;
    List<Decision.Reason> reasons = new ArrayList<>();
    for (String id : new java.util.TreeSet<>(s.getReason())) reasons.add(reasonOf(state, id));
    if (!allowed && reasons.isEmpty()) {
      reasons.add(new Decision.Reason(Decision.Reason.Kind.DEFAULT_DENY, "", 0,
          "no role binding or policy permits " + request.action() + " on " + request.resource().describe()
              + " for " + request.principal().subject()));
    }
    List<String> errors = new ArrayList<>();
    for (AuthorizationSuccessResponse.AuthorizationError e : s.getErrors()) {
      Decision.Reason r = reasonOf(state, e.getPolicyId());
      errors.add(r.description() + ": " + describe(e.getError()));
    }
    return new Decision(allowed, reasons, errors, state.revision);
  }

  private static Decision.Reason reasonOf(CompiledPolicies state, String cedarId) {
    if (cedarId.startsWith("binding/")) {
      Binding b = state.bindings.get(cedarId.substring("binding/".length()));
      if (b != null) return new Decision.Reason(Decision.Reason.Kind.ROLE_BINDING, b.id(), 0, b.describe());
    }
    OperatorPolicy p = state.policiesByCedarId.get(cedarId);
    if (p != null) {
      String d = "policy " + p.id() + " v" + p.version() + (p.description().isEmpty() ? "" : ": " + p.description());
      return new Decision.Reason(Decision.Reason.Kind.POLICY, p.id(), p.version(), d);
    }
    return new Decision.Reason(Decision.Reason.Kind.POLICY, cedarId, 0, cedarId);
  }

  private ActionCatalog.Action checkRequest(AuthzRequest r) {
    Principal p = r.principal();
    if (p == null || p.subject() == null || p.subject().isEmpty()) {
      throw ServiceException.invalid(PolicyReason.INVALID_PRINCIPAL, "principal: subject is required");
    }
    ActionCatalog.Action action = actions.get(r.action());
    if (action == null) {
      throw ServiceException.invalid(PolicyReason.INVALID_ACTION, "unknown action \"" + clip(r.action())
          + "\" (GetSchema lists the actions)");
    }
    if (!action.resourceKinds().contains(r.resource().kind())) {
      throw ServiceException.invalid(PolicyReason.INVALID_RESOURCE, action.name() + " applies to "
          + String.join(" or ", action.resourceKinds().stream().map(k -> k.name().toLowerCase(java.util.Locale.ROOT)).toList())
          + ", not to " + r.resource().describe());
    }
    for (Map.Entry<String, String> e : r.context().entrySet()) {
      if (!CONTEXT_NAMES.contains(e.getKey())) {
        throw ServiceException.invalid(PolicyReason.INVALID_CONTEXT, "unknown context name \"" + clip(e.getKey())
            + "\"; known: " + String.join(", ", new java.util.TreeSet<>(CONTEXT_NAMES)));
      }
      if (e.getValue().length() > MAX_CONTEXT_VALUE) {
        throw ServiceException.invalid(PolicyReason.INVALID_CONTEXT, "context " + e.getKey() + " longer than "
            + MAX_CONTEXT_VALUE + " characters");
      }
    }
    return action;
  }

  /** Adds the group and its ancestors by path: "/a/b" is in "/a". */
  private static void addGroupChain(String path, Set<Entity> entities, Set<String> seen, List<String[]> keys) {
    String g = path;
    while (g != null && seen.add(g)) {
      keys.add(new String[] {"Group", g});
      int slash = g.lastIndexOf('/');
      String parent = g.startsWith("/") && slash > 0 ? g.substring(0, slash) : null;
      entities.add(new Entity(GROUP.of(g), Map.of(), parent == null ? Set.of() : Set.of(GROUP.of(parent))));
      g = parent;
    }
  }

  private static EntityUID addResourceChain(ResourceRef r, Set<Entity> entities) {
    EntityUID dep = DEPLOYMENT.of(ResourceRef.DEPLOYMENT_ID);
    entities.add(new Entity(dep));
    if (r.kind() == ResourceRef.Kind.DEPLOYMENT) return dep;
    EntityUID ns = NAMESPACE.of(r.namespace());
    entities.add(new Entity(ns, Map.of(), Set.of(dep)));
    if (r.kind() == ResourceRef.Kind.NAMESPACE) return ns;
    EntityUID key = KEY.of(r.entityId());
    entities.add(new Entity(key, Map.of(), Set.of(ns)));
    return key;
  }

  static EntityUID subjectUid(SubjectRef s) {
    return type(s.kind().entityType()).of(s.value());
  }

  static EntityUID resourceUid(ResourceRef r) {
    return type(r.entityType()).of(r.entityId());
  }

  private static EntityTypeName type(String base) {
    return TYPES.computeIfAbsent(base, b -> EntityTypeName.parse("Tpmkms::" + b).orElseThrow());
  }

  private static String describe(DetailedError e) {
    return e.message + e.help.filter(h -> !h.isEmpty()).map(h -> " (" + h + ")").orElse("");
  }

  private static String messages(Exception e) {
    String m = e.getMessage();
    return m == null ? e.getClass().getSimpleName() : m;
  }

  private static String clip(String s) {
    String c = s.replaceAll("\\p{Cntrl}", "?");
    return c.length() > 64 ? c.substring(0, 64) + "..." : c;
  }
}

package io.tpmkms.policy.engine;

import com.cedarpolicy.model.exception.CacheException;
import com.cedarpolicy.model.policy.LinkValue;
import com.cedarpolicy.model.policy.Policy;
import com.cedarpolicy.model.policy.PolicySet;
import com.cedarpolicy.model.policy.TemplateLink;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The authorization state of one store revision, ready for decisions:
 * bindings indexed by their subject entity, the operator policies as Cedar
 * static policies, and a bounded cache of the small Cedar policy sets that
 * pre-selection produces (each parsed once on the native side, see ADR 0014).
 *
 * <p>Immutable apart from the cache; safe for any number of threads. A new
 * revision makes a new instance; the old one's cached native sets are freed
 * when it is collected.
 */
public final class CompiledPolicies {
  static final int SELECTION_CACHE_SIZE = 4096;

  final long revision;
  final Map<String, Binding> bindings;
  /** Key: {@link #subjectKey} of the subject entity; value: its live bindings. */
  final Map<String, List<Binding>> bySubject;
  final Map<String, OperatorPolicy> policiesByCedarId;
  final Set<Policy> statics;
  final Set<Policy> templates;
  /** Lock-free reads on the hot path; when full it is emptied (sets are rebuilt on demand, ~1 ms each). */
  private final Map<String, PolicySet> selections = new java.util.concurrent.ConcurrentHashMap<>();

  CompiledPolicies(long revision, Map<String, Binding> bindings, Map<String, List<Binding>> bySubject,
      Map<String, OperatorPolicy> policiesByCedarId, Set<Policy> statics, Set<Policy> templates) {
    this.revision = revision;
    this.bindings = bindings;
    this.bySubject = bySubject;
    this.policiesByCedarId = policiesByCedarId;
    this.statics = statics;
    this.templates = templates;
  }

  public long revision() { return revision; }

  public int bindingCount() { return bindings.size(); }

  public int policyCount() { return policiesByCedarId.size(); }

  /**
   * The Cedar policy set holding every operator policy and exactly these
   * bindings' links, parsed natively once per distinct selection.
   */
  PolicySet policySet(List<Binding> selected, Map<Binding, List<LinkValue>> linkValues) {
    StringBuilder key = new StringBuilder();
    for (Binding b : selected) key.append(b.id()).append(',');
    String k = key.toString();
    PolicySet cached = selections.get(k);
    if (cached != null) return cached;
    List<TemplateLink> links = new ArrayList<>(selected.size());
    for (Binding b : selected) {
      links.add(new TemplateLink(PolicyEngine.templateId(b.role()), PolicyEngine.linkId(b.id()), linkValues.get(b)));
    }
    PolicySet set = new PolicySet(statics, templates, links);
    try {
      set.cache();
    } catch (CacheException e) {
      return set; // still correct, parsed per call instead of once
    }
    if (selections.size() >= SELECTION_CACHE_SIZE) selections.clear();
    PolicySet raced = selections.putIfAbsent(k, set);
    return raced == null ? set : raced;
  }

  /** Every given binding's link and every operator policy, not cached (the reference path of tests). */
  PolicySet uncachedPolicySet(List<Binding> bindings, Map<Binding, List<LinkValue>> linkValues) {
    List<TemplateLink> links = new ArrayList<>(bindings.size());
    for (Binding b : bindings) {
      links.add(new TemplateLink(PolicyEngine.templateId(b.role()), PolicyEngine.linkId(b.id()), linkValues.get(b)));
    }
    return new PolicySet(statics, templates, links);
  }

  static Map<String, List<Binding>> index(Iterable<Binding> bindings) {
    Map<String, List<Binding>> m = new HashMap<>();
    for (Binding b : bindings) {
      m.computeIfAbsent(subjectKey(b.subject().kind().entityType(), b.subject().value()), x -> new ArrayList<>()).add(b);
    }
    return m;
  }

  /** The index key of a subject entity (plain text, no native call). */
  static String subjectKey(String entityType, String id) {
    return entityType + '\0' + id;
  }
}

package io.tpmkms.policy.engine;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The actions of the schema, read from the schema itself (its JSON form), so
 * the schema file is the one source of truth: which roles grant an action
 * (its {@code role:*} groups, used to pre-select bindings) and which resource
 * kinds it applies to (checked before Cedar so the caller gets a plain
 * message). Immutable.
 */
public final class ActionCatalog {
  /** One action: the roles whose group contains it and the resource kinds it applies to. */
  public record Action(String name, Set<Role> roles, Set<ResourceRef.Kind> resourceKinds) {}

  private final Map<String, Action> actions;

  private ActionCatalog(Map<String, Action> actions) {
    this.actions = Collections.unmodifiableMap(actions);
  }

  static ActionCatalog fromSchemaJson(JsonNode schemaJson) {
    JsonNode declared = schemaJson.path("Tpmkms").path("actions");
    Map<String, Action> out = new TreeMap<>();
    declared.fieldNames().forEachRemaining(name -> {
      if (name.startsWith("role:")) return;
      JsonNode a = declared.get(name);
      Set<Role> roles = EnumSet.noneOf(Role.class);
      for (JsonNode m : a.path("memberOf")) {
        for (Role r : Role.values()) {
          if (r.actionGroup().equals(m.path("id").asText())) roles.add(r);
        }
      }
      Set<ResourceRef.Kind> kinds = EnumSet.noneOf(ResourceRef.Kind.class);
      for (JsonNode t : a.path("appliesTo").path("resourceTypes")) {
        kinds.add(ResourceRef.Kind.valueOf(t.asText().toUpperCase(java.util.Locale.ROOT)));
      }
      out.put(name, new Action(name, Collections.unmodifiableSet(roles), Collections.unmodifiableSet(kinds)));
    });
    return new ActionCatalog(new LinkedHashMap<>(out));
  }

  /** The action, or null when the schema has none of that name (role groups are not actions). */
  public Action get(String name) { return actions.get(name); }

  /** Every action name, sorted. */
  public List<String> names() { return List.copyOf(actions.keySet()); }
}

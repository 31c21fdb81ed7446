package io.tpmkms.policy.engine;

/** A live role binding as the engine sees it: {@code subject} has {@code role} on {@code resource}. */
public record Binding(String id, SubjectRef subject, Role role, ResourceRef resource) {
  /** "role user on namespace payments for group /payments". */
  public String describe() {
    return "role " + role.label() + " on " + resource.describe() + " for " + subject.describe();
  }
}

package io.tpmkms.policy.store;

import io.tpmkms.policy.engine.Binding;
import io.tpmkms.policy.engine.ResourceRef;
import io.tpmkms.policy.engine.Role;
import io.tpmkms.policy.engine.SubjectRef;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.EnumType;
import jakarta.persistence.Enumerated;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import jakarta.persistence.Version;
import java.time.Instant;

/**
 * A role binding. Never hard-deleted: a deletion sets {@code deleted},
 * {@code deletedBy} and {@code deleteTime}, so who granted and who revoked
 * what stays answerable. At most one live binding per (subject, role,
 * resource) — a partial unique index enforces it even under races.
 */
@Entity
@Table(name = "role_binding")
public class RoleBindingEntity {
  @Id public long seq;
  @Column(nullable = false, unique = true) public String id;
  @Enumerated(EnumType.STRING) @Column(name = "subject_kind", nullable = false) public SubjectRef.Kind subjectKind;
  @Column(name = "subject_value", nullable = false) public String subjectValue;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public Role role;
  @Column(nullable = false) public String namespace;
  @Column(name = "key_name", nullable = false) public String keyName;
  @Column(nullable = false) public String description;
  @Column(name = "created_by", nullable = false) public String createdBy;
  @Column(name = "create_time", nullable = false) public Instant createTime;
  @Column(nullable = false) public boolean deleted;
  @Column(name = "deleted_by") public String deletedBy;
  @Column(name = "delete_time") public Instant deleteTime;
  @Version @Column(name = "row_version", nullable = false) public long rowVersion;

  public SubjectRef subject() { return new SubjectRef(subjectKind, subjectValue); }

  public ResourceRef resource() { return new ResourceRef(namespace, keyName); }

  public Binding toBinding() { return new Binding(id, subject(), role, resource()); }
}

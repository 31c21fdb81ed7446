package io.tpmkms.policy.store;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.IdClass;
import jakarta.persistence.Table;
import java.io.Serializable;
import java.time.Instant;
import java.util.Objects;

/** One version of a policy, immutable once written; a deletion is a version too. */
@Entity
@Table(name = "policy_version")
@IdClass(PolicyVersionEntity.Key.class)
public class PolicyVersionEntity {
  @Id @Column(name = "policy_id") public String policyId;
  @Id public long version;
  @Column(nullable = false) public String description;
  @Column(nullable = false) public String text;
  @Column(nullable = false) public boolean deleted;
  @Column(name = "created_by", nullable = false) public String createdBy;
  @Column(name = "create_time", nullable = false) public Instant createTime;

  /** The composite primary key (policy id, version). */
  public static class Key implements Serializable {
    public String policyId;
    public long version;

    public Key() {}

    public Key(String policyId, long version) {
      this.policyId = policyId;
      this.version = version;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Key k && k.policyId.equals(policyId) && k.version == version;
    }

    @Override
    public int hashCode() { return Objects.hash(policyId, version); }
  }
}

package io.tpmkms.policy.store;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import jakarta.persistence.Version;

/**
 * The head of a policy: which version is the latest and whether that is a
 * deletion. {@code rowVersion} is the optimistic lock that makes two
 * concurrent updates of one policy end in one success and one ABORTED.
 */
@Entity
@Table(name = "policy")
public class PolicyEntity {
  @Id public String id;
  @Column(name = "latest_version", nullable = false) public long latestVersion;
  @Column(nullable = false) public boolean deleted;
  @Version @Column(name = "row_version", nullable = false) public long rowVersion;
}

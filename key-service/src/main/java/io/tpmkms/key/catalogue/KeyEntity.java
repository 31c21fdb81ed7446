package io.tpmkms.key.catalogue;

import io.tpmkms.key.lifecycle.KeyPurpose;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.ProtectionLevel;
import jakarta.persistence.CollectionTable;
import jakarta.persistence.Column;
import jakarta.persistence.ElementCollection;
import jakarta.persistence.Entity;
import jakarta.persistence.EnumType;
import jakarta.persistence.Enumerated;
import jakarta.persistence.FetchType;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.JoinColumn;
import jakarta.persistence.MapKeyColumn;
import jakarta.persistence.SequenceGenerator;
import jakarta.persistence.Table;
import jakarta.persistence.Version;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;

/**
 * A key: the catalogue entry that names its versions. Read and written through
 * {@link KeyCatalogue}; its fields are changed only by
 * {@link io.tpmkms.key.lifecycle.KeyLifecycleService} under the key's row lock
 * ({@link KeyCatalogue#lockKey}); {@code rowVersion} is both the optimistic
 * lock and the etag clients see.
 */
@Entity
@Table(name = "kms_key")
public class KeyEntity {
  @Id
  @GeneratedValue(strategy = GenerationType.SEQUENCE, generator = "kms_key_seq")
  @SequenceGenerator(name = "kms_key_seq", sequenceName = "kms_key_seq", allocationSize = 50)
  public Long id;

  @Column(nullable = false) public String namespace;
  @Column(nullable = false) public String name;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public KeyPurpose purpose;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public KeyAlgorithm algorithm;
  @Enumerated(EnumType.STRING) @Column(name = "protection_level", nullable = false) public ProtectionLevel protectionLevel;
  @Column(name = "primary_version", nullable = false) public int primaryVersion;
  @Column(name = "last_version", nullable = false) public int lastVersion;
  @Column(name = "rotation_period_seconds") public Long rotationPeriodSeconds;
  @Column(name = "next_rotation_time") public Instant nextRotationTime;
  @Column(name = "create_time", nullable = false) public Instant createTime;
  @Column(name = "update_time", nullable = false) public Instant updateTime;
  /** Versions come only from ImportKeyVersion: no generated first version, RotateKey refused. */
  @Column(name = "import_only", nullable = false) public boolean importOnly;
  /** Fixed at creation: the export policy of every version the key generates (ADR 0025). */
  @Enumerated(EnumType.STRING) @Column(name = "export_policy", nullable = false)
  public io.tpmkms.protection.ExportPolicy exportPolicy = io.tpmkms.protection.ExportPolicy.NON_EXPORTABLE;
  /** The platform binding's PCRs ("7,16") and values (32 bytes each, concatenated); both null: none (ADR 0036). */
  @Column(name = "platform_pcrs") public String platformPcrs;
  @Column(name = "platform_values") public byte[] platformValues;

  /** The platform binding, or null. */
  public io.tpmkms.protection.PlatformBinding platformBinding() {
    return io.tpmkms.key.lifecycle.PlatformBindings.decode(platformPcrs, platformValues);
  }

  public void platformBinding(io.tpmkms.protection.PlatformBinding b) {
    platformPcrs = b == null ? null : b.selectionText();
    platformValues = b == null ? null : io.tpmkms.key.lifecycle.PlatformBindings.values(b);
  }

  @ElementCollection(fetch = FetchType.EAGER)
  @CollectionTable(name = "kms_key_label", joinColumns = @JoinColumn(name = "key_id"))
  @MapKeyColumn(name = "label_key")
  @Column(name = "label_value", nullable = false)
  public Map<String, String> labels = new HashMap<>();

  @Version @Column(name = "row_version", nullable = false) public long rowVersion;

  public String fullName() { return namespace + "/" + name; }

  public Duration rotationPeriod() {
    return rotationPeriodSeconds == null ? null : Duration.ofSeconds(rotationPeriodSeconds);
  }
}

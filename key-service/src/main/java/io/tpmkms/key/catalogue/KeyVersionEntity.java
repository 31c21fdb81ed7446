package io.tpmkms.key.catalogue;

import io.tpmkms.key.lifecycle.KeyVersionState;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.ProtectionLevel;
import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.EnumType;
import jakarta.persistence.Enumerated;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.SequenceGenerator;
import jakarta.persistence.Table;
import jakarta.persistence.Version;
import java.time.Instant;

/**
 * One version of a key: its state (metadata here, never inside the backend)
 * and its wrapped key blob, which is set to null when the version is
 * destroyed while the row stays as a tombstone. Its number is given by
 * {@link KeyCatalogue} from the key's {@code last_version} and never reused.
 */
@Entity
@Table(name = "kms_key_version")
public class KeyVersionEntity {
  @Id
  @GeneratedValue(strategy = GenerationType.SEQUENCE, generator = "kms_key_version_seq")
  @SequenceGenerator(name = "kms_key_version_seq", sequenceName = "kms_key_version_seq", allocationSize = 50)
  public Long id;

  @Column(name = "key_id", nullable = false) public Long keyId;
  @Column(nullable = false) public int number;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public KeyVersionState state;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public KeyAlgorithm algorithm;
  @Enumerated(EnumType.STRING) @Column(name = "protection_level", nullable = false) public ProtectionLevel protectionLevel;
  @Column(name = "backend_id", nullable = false) public String backendId;
  @Column(name = "key_blob") public byte[] keyBlob;
  @Column(name = "public_key") public byte[] publicKey;
  @Column(name = "create_time", nullable = false) public Instant createTime;
  @Column(name = "destroy_time") public Instant destroyTime;
  @Column(name = "destroy_event_time") public Instant destroyEventTime;
  @Column(name = "compromise_time") public Instant compromiseTime;
  /** The material came from ImportKeyVersion (not generated here). */
  @Column(nullable = false) public boolean imported;
  /** "namespace/job_id" of the import job of the (last) import. */
  @Column(name = "import_job") public String importJob;
  /** When the material was (last) imported. */
  @Column(name = "import_time") public Instant importTime;
  /**
   * SHA-256 of the imported material's canonical encoding ({@code KeyMaterial#fingerprint}); kept with the
   * tombstone, so a DESTROYED version can be re-imported with the same material only. Null if not imported.
   */
  @Column(name = "material_fingerprint") public byte[] materialFingerprint;
  /** What the version's object allows, read from its public area when it was made (ADR 0025). */
  @Enumerated(EnumType.STRING) @Column(name = "export_policy", nullable = false)
  public io.tpmkms.protection.ExportPolicy exportPolicy = io.tpmkms.protection.ExportPolicy.NON_EXPORTABLE;
  /** TPM: the object's authPolicy; null when it has none. */
  @Column(name = "policy_digest") public byte[] policyDigest;
  /** Imported by TPM2_Import of a duplication blob. */
  @Column(nullable = false) public boolean duplicated;
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
  @Version @Column(name = "row_version", nullable = false) public long rowVersion;

  public KeyHandle handle() { return keyBlob == null ? null : new KeyHandle(keyBlob); }
}

package io.tpmkms.key.catalogue;

import io.tpmkms.protection.ImportWrapping;
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
 * An import job ({@code import_job}, V4__import.sql): an RSA wrapping key of one
 * protection level that unwraps key material for ImportKeyVersion. Read and
 * written through {@link ImportJobCatalogue}; changed only by
 * {@link io.tpmkms.key.imports.ImportService} under the job's row lock.
 *
 * <p>Invariant (a CHECK in the table): the wrapping key's blob is present exactly
 * while the job is ACTIVE. The public key stays after expiry (it is not secret).
 */
@Entity
@Table(name = "import_job")
public class ImportJobEntity {
  /** PENDING_GENERATION → ACTIVE → EXPIRED; names equal tpmkms.key.v1.ImportJobState's. */
  public enum State { PENDING_GENERATION, ACTIVE, EXPIRED }

  @Id
  @GeneratedValue(strategy = GenerationType.SEQUENCE, generator = "import_job_seq")
  @SequenceGenerator(name = "import_job_seq", sequenceName = "import_job_seq", allocationSize = 50)
  public Long id;

  @Column(nullable = false) public String namespace;
  @Column(name = "job_id", nullable = false) public String jobId;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public ImportWrapping.Method method;
  @Enumerated(EnumType.STRING) @Column(name = "protection_level", nullable = false) public ProtectionLevel protectionLevel;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public State state;
  @Column(name = "backend_id", nullable = false) public String backendId;
  @Column(name = "wrapping_key_blob") public byte[] wrappingKeyBlob;
  @Column(name = "public_key") public byte[] publicKey;
  /** TPM jobs: the serialized tpmkms.key.v1.KeyAttestation of the wrapping key, made at generation. */
  @Column(name = "attestation") public byte[] attestation;
  @Column(name = "lifetime_seconds", nullable = false) public long lifetimeSeconds;
  @Column(name = "create_time", nullable = false) public Instant createTime;
  @Column(name = "generate_time") public Instant generateTime;
  @Column(name = "expire_time") public Instant expireTime;
  @Column(name = "expire_event_time") public Instant expireEventTime;
  @Version @Column(name = "row_version", nullable = false) public long rowVersion;

  /** "namespace/job_id". */
  public String fullName() { return namespace + "/" + jobId; }

  /** The audit resource of the job: "namespace/importJobs/job_id". */
  public String auditName() { return namespace + "/importJobs/" + jobId; }

  public KeyHandle wrappingKey() { return wrappingKeyBlob == null ? null : new KeyHandle(wrappingKeyBlob); }
}

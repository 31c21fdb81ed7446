package io.tpmkms.key.nodes;

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

/** An enrolled node (ADR 0038): its EK, its AK, its attestation policy and where it stands. */
@Entity
@Table(name = "kms_node")
public class NodeEntity {
  public enum State { PENDING_ACTIVATION, ENROLLED, TRUSTED, UNTRUSTED, REVOKED }

  @Id
  @GeneratedValue(strategy = GenerationType.SEQUENCE, generator = "kms_node_seq")
  @SequenceGenerator(name = "kms_node_seq", sequenceName = "kms_node_seq", allocationSize = 50)
  public Long id;

  @Column(nullable = false) public String name;
  @Enumerated(EnumType.STRING) @Column(nullable = false) public State state;
  @Column(name = "ek_public", nullable = false) public byte[] ekPublic;
  @Column(name = "ek_certificate", nullable = false) public byte[] ekCertificate;
  @Column(name = "ek_subject", nullable = false) public String ekSubject;
  @Column(name = "ek_issuer", nullable = false) public String ekIssuer;
  @Column(name = "tpm_manufacturer") public String tpmManufacturer;
  @Column(name = "tpm_model") public String tpmModel;
  @Column(name = "tpm_version") public String tpmVersion;
  @Column(name = "ak_public", nullable = false) public byte[] akPublic;
  @Column(name = "ak_name", nullable = false) public byte[] akName;
  /** "0,1,7": the SHA-256 PCRs every quote covers, ascending. */
  @Column(nullable = false) public String pcrs;
  /** 32 bytes per PCR, in PCR order; null: the event log decides. */
  @Column(name = "golden_values") public byte[] goldenValues;
  @Column(name = "activation_hash") public byte[] activationHash;
  @Column(name = "activation_deadline") public Instant activationDeadline;
  @Column(name = "challenge_nonce") public byte[] challengeNonce;
  @Column(name = "challenge_deadline") public Instant challengeDeadline;
  @Column(name = "create_time", nullable = false) public Instant createTime;
  @Column(name = "activate_time") public Instant activateTime;
  @Column(name = "last_attest_time") public Instant lastAttestTime;
  @Column(name = "trusted_time") public Instant trustedTime;
  @Column(name = "untrusted_reason") public String untrustedReason;
  @Column(name = "revoke_time") public Instant revokeTime;
  @Version @Column(name = "row_version", nullable = false) public long rowVersion;

  public int[] pcrArray() {
    return java.util.Arrays.stream(pcrs.split(",")).mapToInt(Integer::parseInt).toArray();
  }
}

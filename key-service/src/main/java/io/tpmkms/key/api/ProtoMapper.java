package io.tpmkms.key.api;

import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.catalogue.KeyEntity;
import io.tpmkms.key.lifecycle.KeyLifecycleService.KeyView;
import io.tpmkms.key.lifecycle.KeyPurpose;
import io.tpmkms.key.catalogue.KeyVersionEntity;
import io.tpmkms.key.catalogue.ImportJobEntity;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyAttestation;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.KeyVersionState;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.ProtectionLevel;
import java.time.Instant;
import java.util.Base64;

/** Between the domain and the tpmkms.key.v1 messages. Rejects enum values it does not know. */
final class ProtoMapper {
  private ProtoMapper() {}

  static Key key(KeyView view) {
    KeyEntity k = view.key();
    Key.Builder b = Key.newBuilder()
        .setName(k.fullName())
        .setNamespace(k.namespace)
        .setPurpose(io.tpmkms.proto.key.v1.KeyPurpose.valueOf(k.purpose.name()))
        .setAlgorithm(algorithm(k.algorithm))
        .setProtectionLevel(level(k.protectionLevel))
        .setPrimaryVersion(k.primaryVersion)
        .putAllLabels(k.labels)
        .setCreateTime(ts(k.createTime))
        .setUpdateTime(ts(k.updateTime))
        .setEtag(k.rowVersion + 1) // never 0: 0 means "no check" in UpdateKey
        .setImportOnly(k.importOnly)
        .setExportPolicy(exportPolicy(k.exportPolicy));
    if (k.rotationPeriodSeconds != null) b.setRotationPeriod(Duration.newBuilder().setSeconds(k.rotationPeriodSeconds));
    if (k.nextRotationTime != null) b.setNextRotationTime(ts(k.nextRotationTime));
    if (k.platformBinding() != null) b.setPlatformBinding(platformBinding(k.platformBinding()));
    if (view.primary() != null) b.setPrimary(version(k, view.primary()));
    return b.build();
  }

  static KeyVersion version(KeyEntity k, KeyVersionEntity v) {
    return version(k.fullName(), k.primaryVersion, v);
  }

  static KeyVersion version(String key, int primaryVersion, KeyVersionEntity v) {
    KeyVersion.Builder b = KeyVersion.newBuilder()
        .setKey(key)
        .setVersion(v.number)
        .setState(KeyVersionState.valueOf(v.state.name()))
        .setAlgorithm(algorithm(v.algorithm))
        .setProtectionLevel(level(v.protectionLevel))
        .setPrimary(v.number == primaryVersion)
        .setCreateTime(ts(v.createTime));
    if (v.destroyTime != null) b.setDestroyTime(ts(v.destroyTime));
    if (v.destroyEventTime != null) b.setDestroyEventTime(ts(v.destroyEventTime));
    if (v.compromiseTime != null) b.setCompromiseTime(ts(v.compromiseTime));
    if (v.publicKey != null) b.setPublicKeyPem(pem(v.publicKey));
    b.setExportPolicy(exportPolicy(v.exportPolicy)).setDuplicated(v.duplicated);
    if (v.policyDigest != null) b.setPolicyDigest(com.google.protobuf.ByteString.copyFrom(v.policyDigest));
    if (v.platformBinding() != null) b.setPlatformBinding(platformBinding(v.platformBinding()));
    if (v.imported) {
      b.setImported(true);
      if (v.importJob != null) b.setImportJob(v.importJob);
      if (v.importTime != null) b.setImportTime(ts(v.importTime));
    }
    return b.build();
  }

  static io.tpmkms.proto.key.v1.Node node(io.tpmkms.key.nodes.NodeEntity n) {
    var b = io.tpmkms.proto.key.v1.Node.newBuilder()
        .setName(n.name)
        .setState(io.tpmkms.proto.key.v1.NodeState.valueOf(n.state.name()))
        .setEkPublic(com.google.protobuf.ByteString.copyFrom(n.ekPublic))
        .setEkCertificateSubject(n.ekSubject)
        .setEkCertificateIssuer(n.ekIssuer)
        .setAkPublic(com.google.protobuf.ByteString.copyFrom(n.akPublic))
        .setAkName(com.google.protobuf.ByteString.copyFrom(n.akName))
        .setCreateTime(ts(n.createTime));
    if (n.tpmManufacturer != null) b.setTpmManufacturer(n.tpmManufacturer);
    if (n.tpmModel != null) b.setTpmModel(n.tpmModel);
    if (n.tpmVersion != null) b.setTpmVersion(n.tpmVersion);
    int[] pcrs = n.pcrArray();
    for (int p : pcrs) b.addPcrs(p);
    if (n.goldenValues != null) {
      for (int i = 0; i < pcrs.length; i++) {
        b.addGoldenValues(com.google.protobuf.ByteString.copyFrom(n.goldenValues, 32 * i, 32));
      }
    }
    if (n.activateTime != null) b.setActivateTime(ts(n.activateTime));
    if (n.lastAttestTime != null) b.setLastAttestTime(ts(n.lastAttestTime));
    if (n.untrustedReason != null) b.setUntrustedReason(n.untrustedReason);
    if (n.revokeTime != null) b.setRevokeTime(ts(n.revokeTime));
    return b.build();
  }

  static ImportJob importJob(ImportJobEntity j) {
    ImportJob.Builder b = ImportJob.newBuilder()
        .setName(j.fullName())
        .setNamespace(j.namespace)
        .setJobId(j.jobId)
        .setImportMethod(ImportMethod.valueOf(j.method.name()))
        .setProtectionLevel(level(j.protectionLevel))
        .setState(ImportJobState.valueOf(j.state.name()))
        .setCreateTime(ts(j.createTime));
    if (j.generateTime != null) b.setGenerateTime(ts(j.generateTime));
    if (j.expireTime != null) b.setExpireTime(ts(j.expireTime));
    if (j.expireEventTime != null) b.setExpireEventTime(ts(j.expireEventTime));
    if (j.publicKey != null && j.state == ImportJobEntity.State.ACTIVE) b.setPublicKeyPem(pem(j.publicKey));
    if (j.method.duplication() && j.wrappingKeyBlob != null && j.state == ImportJobEntity.State.ACTIVE) {
      b.setWrappingPublic(com.google.protobuf.ByteString.copyFrom(sized(j.wrappingKeyBlob)));
    }
    if (j.attestation != null) {
      try {
        b.setAttestation(KeyAttestation.parseFrom(j.attestation));
      } catch (com.google.protobuf.InvalidProtocolBufferException e) {
        throw new IllegalStateException("stored attestation of import job " + j.fullName() + " does not parse", e);
      }
    }
    return b.build();
  }

  /** null for UNSPECIFIED. */
  static io.tpmkms.protection.ImportWrapping.Method method(ImportMethod m) {
    if (m == ImportMethod.IMPORT_METHOD_UNSPECIFIED) return null;
    if (m == ImportMethod.UNRECOGNIZED) {
      throw ServiceException.invalid(KeyReason.INVALID_IMPORT_METHOD, "unknown import method");
    }
    return io.tpmkms.protection.ImportWrapping.Method.valueOf(m.name());
  }

  /** TPM2B: uint16 size and the bytes. */
  static byte[] sized(byte[] b) {
    byte[] out = new byte[b.length + 2];
    out[0] = (byte) (b.length >>> 8);
    out[1] = (byte) b.length;
    System.arraycopy(b, 0, out, 2, b.length);
    return out;
  }

  static io.tpmkms.proto.key.v1.PlatformBinding platformBinding(io.tpmkms.protection.PlatformBinding p) {
    var b = io.tpmkms.proto.key.v1.PlatformBinding.newBuilder();
    for (int pcr : p.pcrs()) b.addPcrs(pcr);
    for (byte[] v : p.values()) b.addValues(com.google.protobuf.ByteString.copyFrom(v));
    return b.build();
  }

  /** The request's binding (null when unset), checked: INVALID_ARGUMENT INVALID_PLATFORM_BINDING. */
  static io.tpmkms.protection.PlatformBinding platformBinding(boolean present, io.tpmkms.proto.key.v1.PlatformBinding p) {
    if (!present) return null;
    return io.tpmkms.key.lifecycle.PlatformBindings.of(p.getPcrsList(),
        p.getValuesList().stream().map(com.google.protobuf.ByteString::toByteArray).toList());
  }

  static io.tpmkms.proto.key.v1.ExportPolicy exportPolicy(io.tpmkms.protection.ExportPolicy p) {
    return io.tpmkms.proto.key.v1.ExportPolicy.valueOf(p.name());
  }

  /** null for UNSPECIFIED (NON_EXPORTABLE by default). */
  static io.tpmkms.protection.ExportPolicy exportPolicy(io.tpmkms.proto.key.v1.ExportPolicy p) {
    return switch (p) {
      case EXPORT_POLICY_UNSPECIFIED -> null;
      case NON_EXPORTABLE -> io.tpmkms.protection.ExportPolicy.NON_EXPORTABLE;
      case DUPLICABLE -> io.tpmkms.protection.ExportPolicy.DUPLICABLE;
      default -> throw ServiceException.invalid(KeyReason.INVALID_EXPORT_POLICY, "unknown export policy");
    };
  }

  static String pem(byte[] spki) {
    return io.tpmkms.key.imports.AttestationEncoding.pem(spki);
  }

  static Algorithm algorithm(KeyAlgorithm a) {
    return Algorithm.valueOf(a.name());
  }

  /** null for UNSPECIFIED. */
  static KeyAlgorithm algorithm(Algorithm a) {
    if (a == Algorithm.ALGORITHM_UNSPECIFIED) return null;
    if (a == Algorithm.UNRECOGNIZED) throw ServiceException.invalid(KeyReason.INVALID_ALGORITHM, "unknown algorithm");
    return KeyAlgorithm.valueOf(a.name());
  }

  static KeyPurpose purpose(io.tpmkms.proto.key.v1.KeyPurpose p) {
    if (p == io.tpmkms.proto.key.v1.KeyPurpose.KEY_PURPOSE_UNSPECIFIED) return null;
    if (p == io.tpmkms.proto.key.v1.KeyPurpose.UNRECOGNIZED) {
      throw ServiceException.invalid(KeyReason.INVALID_PURPOSE, "unknown purpose");
    }
    return KeyPurpose.valueOf(p.name());
  }

  /** null for UNSPECIFIED (a filter: any state). */
  static io.tpmkms.key.lifecycle.KeyVersionState versionState(io.tpmkms.proto.key.v1.KeyVersionState s) {
    if (s == io.tpmkms.proto.key.v1.KeyVersionState.KEY_VERSION_STATE_UNSPECIFIED) return null;
    try {
      return io.tpmkms.key.lifecycle.KeyVersionState.valueOf(s.name());
    } catch (IllegalArgumentException e) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "unknown key version state");
    }
  }

  static io.tpmkms.proto.key.v1.ProtectionLevel level(ProtectionLevel l) {
    return io.tpmkms.proto.key.v1.ProtectionLevel.valueOf(l.name());
  }

  /** null for UNSPECIFIED. */
  static ProtectionLevel level(io.tpmkms.proto.key.v1.ProtectionLevel l) {
    return switch (l) {
      case PROTECTION_LEVEL_UNSPECIFIED -> null;
      case SOFTWARE -> ProtectionLevel.SOFTWARE;
      case TPM -> ProtectionLevel.TPM;
      default -> throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "unknown protection level");
    };
  }

  static Timestamp ts(Instant i) {
    return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
  }

  static Instant instant(Timestamp t) {
    if (t.getNanos() < 0 || t.getNanos() > 999_999_999) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "timestamp nanos out of range");
    }
    // google.protobuf.Timestamp's own range, 0001-01-01 .. 9999-12-31 (beyond it Instant or PostgreSQL fails)
    if (t.getSeconds() < -62_135_596_800L || t.getSeconds() > 253_402_300_799L) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "timestamp outside 0001-01-01 .. 9999-12-31");
    }
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  static java.time.Duration duration(Duration d) {
    if (d.getSeconds() < 0 || d.getNanos() < 0) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "durations must not be negative");
    }
    // google.protobuf.Duration's own range: at most 10,000 years, nanos below one second
    if (d.getSeconds() > 315_576_000_000L || d.getNanos() > 999_999_999) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "duration outside google.protobuf.Duration's range");
    }
    return java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
  }
}

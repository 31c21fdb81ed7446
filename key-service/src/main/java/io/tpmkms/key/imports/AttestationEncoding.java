package io.tpmkms.key.imports;

import com.google.protobuf.ByteString;
import io.tpmkms.protection.KeyAttestation;

/**
 * A TPM2_Certify statement as tpmkms.key.v1.KeyAttestation: what GetKeyAttestation
 * returns, and how an import job keeps its wrapping key's attestation (the message,
 * serialized), so one verifier checks both.
 */
public final class AttestationEncoding {
  private AttestationEncoding() {}

  static byte[] encode(KeyAttestation a) {
    return toProto(a).toByteArray();
  }

  public static io.tpmkms.proto.key.v1.KeyAttestation toProto(KeyAttestation a) {
    io.tpmkms.proto.key.v1.KeyAttestation.Builder b = io.tpmkms.proto.key.v1.KeyAttestation.newBuilder()
        .setAttest(ByteString.copyFrom(a.attest()))
        .setSignature(ByteString.copyFrom(a.signature()))
        .setAttestationKeyPem(pem(a.akPublicDer()))
        .setAttestationKeyPublic(ByteString.copyFrom(a.akTpmPublic()))
        .setAttestationKeyName(ByteString.copyFrom(a.akName()))
        .setCertifiedName(ByteString.copyFrom(a.certifiedName()))
        .setCertifiedPublic(ByteString.copyFrom(a.certifiedTpmPublic()));
    if (a.ekCertificateDer() != null) b.setEkCertificate(ByteString.copyFrom(a.ekCertificateDer()));
    return b.build();
  }

  /** A DER SubjectPublicKeyInfo as PEM "PUBLIC KEY". */
  public static String pem(byte[] spki) {
    return "-----BEGIN PUBLIC KEY-----\n"
        + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(spki)
        + "\n-----END PUBLIC KEY-----\n";
  }
}

package io.tpmkms.protection;

/**
 * A TPM's statement about a key version (TPM2_Certify): the TPM signed, with
 * its attestation key (AK), that an object of the given name is loaded in it.
 * Together with the key's public area (whose attributes say fixedTPM,
 * fixedParent, sensitiveDataOrigin) it shows whether the key was generated in
 * the TPM or imported, and whether it can leave it. Verify offline with
 * {@code io.tpmkms.protection.tpm.KeyAttestationVerifier}.
 *
 * <p>Trust in the AK itself comes from the EK: the AK is a primary key in the
 * endorsement hierarchy; binding it to the EK certificate (credential
 * activation) is a separate step, not part of this statement.
 *
 * @param attest the TPMS_ATTEST as marshalled and signed by the TPM
 * @param signature DER ECDSA P-256/SHA-256 signature over {@code attest} by the AK
 * @param akPublicDer the AK's public key, DER SubjectPublicKeyInfo
 * @param akTpmPublic the AK's TPMT_PUBLIC (its name is nameAlg || SHA-256 of these bytes)
 * @param akName the AK's TPM name
 * @param ekCertificateDer the TPM's EK certificate (DER) if the TPM has one in NV, else null
 * @param certifiedName the certified key object's TPM name
 * @param certifiedTpmPublic the certified key's TPMT_PUBLIC: its hash is the certified name, its
 *     attributes say how the key was made, and it holds the public key (check it against the key's
 *     published public key)
 */
public record KeyAttestation(byte[] attest, byte[] signature, byte[] akPublicDer, byte[] akTpmPublic,
    byte[] akName, byte[] ekCertificateDer, byte[] certifiedName, byte[] certifiedTpmPublic) {
  public KeyAttestation {
    attest = attest.clone();
    signature = signature.clone();
    akPublicDer = akPublicDer.clone();
    akTpmPublic = akTpmPublic.clone();
    akName = akName.clone();
    ekCertificateDer = ekCertificateDer == null ? null : ekCertificateDer.clone();
    certifiedName = certifiedName.clone();
    certifiedTpmPublic = certifiedTpmPublic.clone();
  }

  @Override public byte[] attest() { return attest.clone(); }
  @Override public byte[] signature() { return signature.clone(); }
  @Override public byte[] akPublicDer() { return akPublicDer.clone(); }
  @Override public byte[] akTpmPublic() { return akTpmPublic.clone(); }
  @Override public byte[] akName() { return akName.clone(); }
  @Override public byte[] ekCertificateDer() { return ekCertificateDer == null ? null : ekCertificateDer.clone(); }
  @Override public byte[] certifiedName() { return certifiedName.clone(); }
  @Override public byte[] certifiedTpmPublic() { return certifiedTpmPublic.clone(); }

  @Override public boolean equals(Object o) {
    return o instanceof KeyAttestation a && java.util.Arrays.equals(attest, a.attest)
        && java.util.Arrays.equals(signature, a.signature);
  }

  @Override public int hashCode() { return java.util.Arrays.hashCode(attest); }

  @Override public String toString() { return "KeyAttestation[" + attest.length + " bytes attested]"; }
}

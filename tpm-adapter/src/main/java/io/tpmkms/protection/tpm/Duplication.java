package io.tpmkms.protection.tpm;

/**
 * A key duplicated to another TPM's storage key, in the three parts {@code tpm2_import} reads
 * ({@code -u}, {@code -i}, {@code -s}), each marshalled with its uint16 size as tpm2-tools writes
 * them: the key's TPM2B_PUBLIC, the TPM2B_PRIVATE duplicate (outer-wrapped: AES-128-CFB and an
 * HMAC integrity value under a seed only the target can recover) and the TPM2B_ENCRYPTED_SECRET
 * seed, plus the name of the duplication authority in the key's policy (for a tpmkms importer).
 */
public record Duplication(byte[] tpm2bPublic, byte[] duplicate, byte[] encryptedSeed, byte[] authorityName) {
  public Duplication {
    tpm2bPublic = tpm2bPublic.clone();
    duplicate = duplicate.clone();
    encryptedSeed = encryptedSeed.clone();
    authorityName = authorityName.clone();
  }

  @Override public byte[] tpm2bPublic() { return tpm2bPublic.clone(); }
  @Override public byte[] duplicate() { return duplicate.clone(); }
  @Override public byte[] encryptedSeed() { return encryptedSeed.clone(); }
  @Override public byte[] authorityName() { return authorityName.clone(); }

  @Override
  public String toString() {
    return "Duplication[public " + tpm2bPublic.length + " B, duplicate " + duplicate.length + " B, seed "
        + encryptedSeed.length + " B]";
  }
}

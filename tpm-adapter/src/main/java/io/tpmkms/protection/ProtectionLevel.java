package io.tpmkms.protection;

/** Where key material is protected. */
public enum ProtectionLevel { SOFTWARE, TPM }

package io.tpmkms.protection;

/**
 * A freshly generated key: its handle to store, and for asymmetric keys the
 * public key as DER SubjectPublicKeyInfo (null for symmetric and MAC keys).
 */
public record GeneratedKey(KeyHandle handle, byte[] publicKeyDer) {}

package io.tpmkms.protection;

/** What a backend can do; callers check {@link BackendDescription#capabilities()} before calling. */
public enum Capability {
  GENERATE, SIGN, ENCRYPT, ASYMMETRIC_DECRYPT, MAC, RANDOM, IMPORT, CERTIFY, DUPLICATE
}

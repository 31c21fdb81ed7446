package io.tpmkms.protection;

import java.util.Arrays;

/**
 * An opaque, format-versioned key blob produced by a backend and stored by the
 * caller (the key catalogue lives outside the backend). For software keys it
 * holds the key material wrapped under the root key; for TPM keys the
 * TPM2B_PUBLIC and TPM2B_PRIVATE. Never contains material in the clear.
 */
public record KeyHandle(byte[] blob) {
  public KeyHandle {
    if (blob == null || blob.length == 0) throw new IllegalArgumentException("empty key blob");
    blob = blob.clone();
  }

  @Override public byte[] blob() { return blob.clone(); }

  @Override public boolean equals(Object o) {
    return o instanceof KeyHandle h && Arrays.equals(blob, h.blob);
  }

  @Override public int hashCode() { return Arrays.hashCode(blob); }

  @Override public String toString() { return "KeyHandle[" + blob.length + " bytes]"; }
}

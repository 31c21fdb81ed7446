package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.PlatformBinding;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import tss.tpm.TPMT_PUBLIC;

/**
 * Blob format v1 of the TPM backend (ADR 0008; docs/tpm-adapter.md gives it byte by byte):
 *
 * <pre>
 * offset size
 *      0    4  magic "TKMS"
 *      4    1  format version 0x01
 *      5    1  backend 0x02 (tpm)
 *      6    2  algorithm code, uint16 BE
 *      8    2  SRK name length n, uint16 BE (34 for a SHA-256 name)
 *     10    n  SRK name (nameAlg || SHA-256(TPMT_PUBLIC of the SRK))
 *   10+n   16  object id (random; input of the object's auth value)
 *   26+n    …  TPM2B_PUBLIC  (uint16 BE size + TPMT_PUBLIC), exactly as tpm2_load -u takes it
 *      …    …  TPM2B_PRIVATE (uint16 BE size + private), exactly as tpm2_load -r takes it
 * </pre>
 *
 * No trailing bytes. Sealed-root files use the same layout with backend 0x03 and
 * algorithm code 0.
 *
 * <p>Format v2 (imported keys) is v1 with one flags byte after the algorithm code (offset 8;
 * bit 0 {@link #FLAG_IMPORTED}, other bits must be 0); everything after it moves by one byte.
 * Blobs without flags (generated keys, sealed roots) are still written as v1, so older versions
 * read them. The flag is not what the TPM trusts: the public area (attributes, authPolicy) is
 * bound into the object's name, and the backend checks that it is the imported template
 * exactly when the flag is set. Flags bit 1 (DUPLICABLE) adds a TPM2B with the duplication
 * authority's name after the TPM2B_PRIVATE; bit 2 marks a key that came in by duplication.
 * Flags bit 3 (PLATFORM_BOUND, ADR 0036) adds the binding after that: a count n (1 byte, 1..8),
 * n PCR indexes (1 byte each, ascending, 0..23), then n SHA-256 values (32 bytes each). The binding
 * is not what the TPM trusts either: the backend rebuilds the policy from it and checks that the
 * public area's authPolicy is that policy, so a blob whose binding was edited does not load.
 * Stateless.
 */
public record TpmBlob(int backend, int algorithmCode, byte[] srkName, byte[] objectId,
    byte[] tpm2bPublic, byte[] tpm2bPrivate, int flags, byte[] authorityName, PlatformBinding binding) {

  public static final byte[] MAGIC = "TKMS".getBytes(StandardCharsets.US_ASCII);
  public static final int FORMAT_V1 = 0x01;
  public static final int FORMAT_V2 = 0x02;
  /** v2 flags bit 0: the key's material came from outside (TPM2_Import, or TPM2_Create with data). */
  public static final int FLAG_IMPORTED = 0x01;
  /**
   * v2 flags bit 1: a DUPLICABLE key (ADR 0025); a TPM2B with the duplication authority's name
   * (the keySign of its policy's DUP branch) follows the TPM2B_PRIVATE.
   */
  public static final int FLAG_DUPLICABLE = 0x02;
  /** v2 flags bit 2: the key came in by TPM2_Import of a duplication blob made by another TPM. */
  public static final int FLAG_DUPLICATED = 0x04;
  /** v2 flags bit 3: a platform-bound key (ADR 0036); its PCR selection and values follow. */
  public static final int FLAG_PLATFORM_BOUND = 0x08;
  private static final int KNOWN_FLAGS = FLAG_IMPORTED | FLAG_DUPLICABLE | FLAG_DUPLICATED | FLAG_PLATFORM_BOUND;
  public static final int BACKEND_TPM = 0x02;
  public static final int BACKEND_TPM_SEALED_ROOT = 0x03;
  public static final int OBJECT_ID_LENGTH = 16;

  /** A blob without flags (written as format v1). */
  public TpmBlob(int backend, int algorithmCode, byte[] srkName, byte[] objectId, byte[] tpm2bPublic,
      byte[] tpm2bPrivate) {
    this(backend, algorithmCode, srkName, objectId, tpm2bPublic, tpm2bPrivate, 0, null, null);
  }

  /** A blob with flags and, for a DUPLICABLE key, its authority (no binding). */
  public TpmBlob(int backend, int algorithmCode, byte[] srkName, byte[] objectId, byte[] tpm2bPublic,
      byte[] tpm2bPrivate, int flags, byte[] authorityName) {
    this(backend, algorithmCode, srkName, objectId, tpm2bPublic, tpm2bPrivate, flags, authorityName, null);
  }

  /** A blob with flags but no authority (not DUPLICABLE). */
  public TpmBlob(int backend, int algorithmCode, byte[] srkName, byte[] objectId, byte[] tpm2bPublic,
      byte[] tpm2bPrivate, int flags) {
    this(backend, algorithmCode, srkName, objectId, tpm2bPublic, tpm2bPrivate, flags, null, null);
  }

  public TpmBlob {
    if (((flags & FLAG_DUPLICABLE) != 0) != (authorityName != null)) {
      throw new IllegalArgumentException("a DUPLICABLE blob, and only one, names its duplication authority");
    }
    if (((flags & FLAG_PLATFORM_BOUND) != 0) != (binding != null) || (binding != null && !binding.resolved())) {
      throw new IllegalArgumentException("a PLATFORM_BOUND blob, and only one, holds its PCR values");
    }
  }

  public boolean platformBound() { return (flags & FLAG_PLATFORM_BOUND) != 0; }

  public boolean imported() { return (flags & FLAG_IMPORTED) != 0; }

  public boolean duplicable() { return (flags & FLAG_DUPLICABLE) != 0; }

  public boolean duplicated() { return (flags & FLAG_DUPLICATED) != 0; }

  public byte[] encode() {
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 + tpm2bPublic.length + tpm2bPrivate.length);
    out.writeBytes(MAGIC);
    out.write(flags == 0 ? FORMAT_V1 : FORMAT_V2);
    out.write(backend);
    out.write(algorithmCode >>> 8);
    out.write(algorithmCode);
    if (flags != 0) out.write(flags);
    out.write(srkName.length >>> 8);
    out.write(srkName.length);
    out.writeBytes(srkName);
    out.writeBytes(objectId);
    out.writeBytes(tpm2bPublic);
    out.writeBytes(tpm2bPrivate);
    if (authorityName != null) {
      out.write(authorityName.length >>> 8);
      out.write(authorityName.length);
      out.writeBytes(authorityName);
    }
    if (binding != null) {
      int[] pcrs = binding.pcrs();
      out.write(pcrs.length);
      for (int p : pcrs) out.write(p);
      for (byte[] v : binding.values()) out.writeBytes(v);
    }
    return out.toByteArray();
  }

  /** TPMT_PUBLIC: the TPM2B_PUBLIC without its size. */
  public byte[] tpmtPublic() { return Arrays.copyOfRange(tpm2bPublic, 2, tpm2bPublic.length); }

  public TPMT_PUBLIC publicArea() {
    try {
      return TPMT_PUBLIC.fromBytes(tpmtPublic());
    } catch (RuntimeException e) {
      throw new BackendException(Kind.KEY_INVALID, "key blob holds a malformed TPM public area", e);
    }
  }

  public KeyAlgorithm algorithm() { return KeyAlgorithm.fromCode(algorithmCode); }

  /**
   * Parses a blob of the given backend id.
   *
   * @throws BackendException KEY_INVALID for anything malformed, naming what is wrong
   */
  public static TpmBlob decode(byte[] blob, int expectedBackend) {
    if (blob == null || blob.length < 6 || !MessageDigest.isEqual(Arrays.copyOf(blob, 4), MAGIC)) {
      throw invalid("bad magic: not a tpmkms key blob");
    }
    int version = blob[4] & 0xff;
    if (version != FORMAT_V1 && version != FORMAT_V2) throw invalid("unknown key blob format version " + version);
    int backend = blob[5] & 0xff;
    if (backend != expectedBackend) {
      throw invalid("not a TPM " + (expectedBackend == BACKEND_TPM ? "key" : "sealed-root")
          + " blob (backend id " + backend + ")");
    }
    try {
      ByteBuffer b = ByteBuffer.wrap(blob, 6, blob.length - 6);
      int alg = b.getShort() & 0xffff;
      int flags = 0;
      if (version == FORMAT_V2) {
        flags = b.get() & 0xff;
        if (flags == 0 || (flags & ~KNOWN_FLAGS) != 0) {
          throw invalid("key blob has unknown flags 0x" + Integer.toHexString(flags));
        }
      }
      byte[] srkName = take(b, b.getShort() & 0xffff);
      if (srkName.length < 2) throw invalid("key blob has an empty SRK name");
      byte[] objectId = take(b, OBJECT_ID_LENGTH);
      byte[] pub = sized(b);
      byte[] priv = sized(b);
      byte[] authority = null;
      if ((flags & FLAG_DUPLICABLE) != 0) {
        authority = take(b, b.getShort() & 0xffff);
        if (authority.length != 34) throw invalid("key blob names a duplication authority of " + authority.length + " bytes");
      }
      PlatformBinding binding = null;
      if ((flags & FLAG_PLATFORM_BOUND) != 0) {
        int n = b.get() & 0xff;
        if (n == 0 || n > PlatformBinding.MAX_PCRS) throw invalid("key blob binds " + n + " PCRs");
        int[] pcrs = new int[n];
        for (int i = 0; i < n; i++) pcrs[i] = b.get() & 0xff;
        byte[][] values = new byte[n][];
        for (int i = 0; i < n; i++) values[i] = take(b, PlatformBinding.VALUE_LENGTH);
        try {
          binding = new PlatformBinding(pcrs, values);
        } catch (IllegalArgumentException e) {
          throw invalid("key blob has a malformed platform binding: " + e.getMessage());
        }
      }
      if (b.hasRemaining()) throw invalid("key blob has " + b.remaining() + " trailing bytes");
      if (pub.length < 2 + 10 || priv.length < 2 + 16) throw invalid("key blob has an empty TPM part");
      return new TpmBlob(backend, alg, srkName, objectId, pub, priv, flags, authority, binding);
    } catch (java.nio.BufferUnderflowException e) {
      throw new BackendException(Kind.KEY_INVALID, "key blob truncated (" + blob.length + " bytes)", e);
    }
  }

  private static byte[] take(ByteBuffer b, int n) {
    byte[] out = new byte[n];
    b.get(out);
    return out;
  }

  /** A TPM2B: its uint16 size and the bytes, returned whole (size included). */
  private static byte[] sized(ByteBuffer b) {
    int start = b.position();
    int n = b.getShort() & 0xffff;
    b.position(start);
    return take(b, 2 + n);
  }

  private static BackendException invalid(String message) {
    return new BackendException(Kind.KEY_INVALID, message);
  }
}

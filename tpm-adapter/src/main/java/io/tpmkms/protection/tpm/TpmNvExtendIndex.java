package io.tpmkms.protection.tpm;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.tpm.internal.ResponseCodes;
import io.tpmkms.protection.tpm.internal.TpmRcException;
import io.tpmkms.protection.tpm.internal.TpmSession;
import tss.tpm.NV_ReadPublicResponse;
import tss.tpm.TPMA_NV;
import tss.tpm.TPMS_NV_PUBLIC;
import tss.tpm.TPM_ALG_ID;
import tss.tpm.TPM_HANDLE;
import tss.tpm.TPM_RH;

/**
 * A TPM NV index of type extend (TPM_NT_EXTEND) with SHA-256 as its name
 * algorithm: a PCR that lives in NV memory, survives TPM resets and belongs to
 * one application. Its value can only be extended:
 * {@code value = SHA-256(value || data)}, starting from 32 zero bytes. Nobody,
 * including the owner, can set it to a chosen value; the owner can only
 * delete the index (and a new one starts from zero again).
 *
 * <p>Defined by {@link #defineIfAbsent} under the owner hierarchy (whose auth
 * value must be empty, as on swtpm and a freshly provisioned TPM) with the
 * attributes AUTHWRITE | AUTHREAD | NO_DA and an empty auth value: anyone with
 * access to the TPM may read and extend it (see docs/adr/0012). Not ORDERLY:
 * every extend is written to NV at once, so a power loss loses nothing — and
 * each extend wears the TPM's NV memory, so callers extend sparingly.
 *
 * <p>Threading: safe; every command runs through the {@link TpmConnection}'s
 * queue. Errors ({@link BackendException}): UNAVAILABLE when the TPM cannot be
 * reached or is busy; KEY_INVALID when the index exists with other attributes
 * (not ours); INTERNAL for other TPM failures.
 */
public final class TpmNvExtendIndex {
  /** The default index of the audit service (owner range 0x01xxxxxx, TCG: 0x0150xxxx is unassigned). */
  public static final int DEFAULT_INDEX = 0x01500100;
  public static final int SIZE = 32;

  private static final TPMA_NV ATTRIBUTES =
      new TPMA_NV(TPMA_NV.EXTEND, TPMA_NV.AUTHWRITE, TPMA_NV.AUTHREAD, TPMA_NV.NO_DA);
  /** The attributes we set; the TPM adds WRITTEN (after the first extend) and may add others we ignore. */
  private static final int CHECKED_MASK = ATTRIBUTES.toInt() | TPMA_NV.TpmNt_BIT_MASK.toInt()
      | TPMA_NV.ORDERLY.toInt() | TPMA_NV.POLICYWRITE.toInt() | TPMA_NV.OWNERWRITE.toInt();

  private final TpmConnection connection;
  private final int index;

  /**
   * @param index an NV index handle in the owner range, e.g. {@link #DEFAULT_INDEX}
   */
  public TpmNvExtendIndex(TpmConnection connection, int index) {
    if (connection == null) throw new IllegalArgumentException("connection required");
    if ((index >>> 24) != 0x01) throw new IllegalArgumentException("NV index must be 0x01xxxxxx");
    this.connection = connection;
    this.index = index;
  }

  public int index() { return index; }

  /**
   * Defines the index if it does not exist; checks an existing one is an
   * extend index of ours (SHA-256, 32 bytes, our attributes).
   *
   * @return true if this call defined it
   */
  public boolean defineIfAbsent() {
    return connection.execute(s -> {
      NV_ReadPublicResponse p = readPublic(s);
      if (p != null) {
        check(p.nvPublic);
        return false;
      }
      TPMS_NV_PUBLIC pub = new TPMS_NV_PUBLIC(new TPM_HANDLE(index), TPM_ALG_ID.SHA256, ATTRIBUTES, new byte[0], SIZE);
      TPM_HANDLE owner = TPM_HANDLE.from(TPM_RH.OWNER);
      owner.AuthValue = new byte[0];
      s.run("NV_DefineSpace", () -> s.tpm().NV_DefineSpace(owner, new byte[0], pub));
      return true;
    });
  }

  /** Whether the index exists. */
  public boolean exists() {
    return connection.execute(s -> readPublic(s) != null);
  }

  /**
   * Extends the index: {@code value = SHA-256(value || data)}.
   *
   * @param data at most 1024 bytes (the audit service extends 32-byte hashes)
   */
  public void extend(byte[] data) {
    if (data == null || data.length == 0 || data.length > 1024) {
      throw new BackendException(Kind.INVALID_INPUT, "extend data must be 1..1024 bytes");
    }
    byte[] copy = data.clone();
    connection.execute(s -> {
      TPM_HANDLE nv = handle(s);
      s.run("NV_Extend", () -> s.tpm().NV_Extend(nv, nv, copy));
      return null;
    });
  }

  /**
   * The current value: 32 bytes, or 32 zero bytes while the index has never
   * been extended (the value the first extend starts from).
   */
  public byte[] read() {
    return connection.execute(s -> {
      NV_ReadPublicResponse p = readPublic(s);
      if (p == null) throw new BackendException(Kind.KEY_INVALID, String.format("NV index 0x%08x is not defined", index));
      check(p.nvPublic);
      if (!p.nvPublic.attributes.hasAttr(TPMA_NV.WRITTEN)) return new byte[SIZE];
      TPM_HANDLE nv = new TPM_HANDLE(index);
      nv.AuthValue = new byte[0];
      nv.Name = p.nvName;
      return s.run("NV_Read", () -> s.tpm().NV_Read(nv, nv, SIZE, 0));
    });
  }

  /**
   * Deletes the index (owner authorization). Only for tests and a deliberate
   * operator reset: the value it held is gone for good.
   */
  public void undefine() {
    connection.execute(s -> {
      if (readPublic(s) == null) return null;
      TPM_HANDLE owner = TPM_HANDLE.from(TPM_RH.OWNER);
      owner.AuthValue = new byte[0];
      TPM_HANDLE nv = new TPM_HANDLE(index);
      s.run("NV_UndefineSpace", () -> s.tpm().NV_UndefineSpace(owner, nv));
      return null;
    });
  }

  private TPM_HANDLE handle(TpmSession s) {
    NV_ReadPublicResponse p = readPublic(s);
    if (p == null) throw new BackendException(Kind.KEY_INVALID, String.format("NV index 0x%08x is not defined", index));
    check(p.nvPublic);
    TPM_HANDLE nv = new TPM_HANDLE(index);
    nv.AuthValue = new byte[0];
    nv.Name = p.nvName; // changes with WRITTEN: always the current one
    return nv;
  }

  /** The public area, or null when the index is not defined. */
  private NV_ReadPublicResponse readPublic(TpmSession s) {
    try {
      return s.run("NV_ReadPublic", () -> s.tpm().NV_ReadPublic(new TPM_HANDLE(index)));
    } catch (TpmRcException e) {
      if (e.base() == ResponseCodes.HANDLE) return null;
      throw e;
    }
  }

  private void check(TPMS_NV_PUBLIC pub) {
    int attrs = pub.attributes.toInt() & CHECKED_MASK;
    if (pub.nameAlg != TPM_ALG_ID.SHA256 || pub.dataSize != SIZE || attrs != ATTRIBUTES.toInt()) {
      throw new BackendException(Kind.KEY_INVALID, String.format(
          "NV index 0x%08x exists but is not a SHA-256 extend index with our attributes (nameAlg %s, size %d, "
              + "attributes 0x%08x); choose another index or undefine it", index, pub.nameAlg, pub.dataSize,
          pub.attributes.toInt()));
    }
  }

  @Override public String toString() { return String.format("TpmNvExtendIndex[0x%08x]", index); }
}

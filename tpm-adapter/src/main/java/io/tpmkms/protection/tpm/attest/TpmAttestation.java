package io.tpmkms.protection.tpm.attest;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmRcException;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.function.Function;
import tss.tpm.CreatePrimaryResponse;
import tss.tpm.NV_ReadPublicResponse;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPM_HANDLE;
import tss.tpm.TPM_RH;

/**
 * The node side of attestation on one TPM (what a Keylime agent does): the EK and its certificate,
 * the AK, credential activation, quotes, and the PCR commands of a measuring agent. Every operation
 * runs alone on the {@link TpmConnection}, creates the primaries it needs in the endorsement
 * hierarchy (with the SRK, three transient objects: what swtpm holds) and flushes them.
 *
 * <p>The AK is tpmkms' attestation key ({@code Templates.ak()}): a restricted ECDSA P-256/SHA-256
 * signing primary, fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA, empty auth.
 * As a primary it is the same key every time on the same TPM (until the endorsement seed changes),
 * so the verifier can enroll its name once.
 */
public final class TpmAttestation {
  private static final int CC_QUOTE = 0x158;
  private static final int CC_PCR_READ = 0x17E;
  private static final int CC_PCR_EXTEND = 0x182;
  private static final int CC_PCR_RESET = 0x13D;
  private static final int NV_CHUNK = 512;
  private static final int MAX_NONCE = 64;

  private final TpmConnection connection;
  private final java.util.function.Supplier<TPMT_PUBLIC> akTemplate;

  /** With the service's own AK ({@code Templates.ak()}: the key attestations' signer). */
  public TpmAttestation(TpmConnection connection) { this(connection, Templates::ak); }

  private TpmAttestation(TpmConnection connection, java.util.function.Supplier<TPMT_PUBLIC> akTemplate) {
    this.connection = connection;
    this.akTemplate = akTemplate;
  }

  /** A node agent's view of its TPM: the node AK ({@code Templates.nodeAk()}, ADR 0038), never the service's. */
  public static TpmAttestation forNode(TpmConnection connection) {
    return new TpmAttestation(connection, Templates::nodeAk);
  }

  /** Which default EK (TCG template L-1 or L-2). */
  public enum EkType { RSA_2048, ECC_P256 }

  /**
   * The EK as this TPM re-creates it from the TCG default template, and its certificate from NV.
   *
   * @param certificate the DER certificate, or null when the TPM has none at the template's index
   */
  public record EndorsementKey(EkType type, byte[] tpmtPublic, byte[] name, byte[] certificate) {}

  /** The AK's public area (TPMT_PUBLIC) and name. */
  public record AttestationKey(byte[] tpmtPublic, byte[] name) {}

  /**
   * A TPM2_Quote and the PCR values read right after it, in the same locked operation.
   *
   * @param attest the signed TPMS_ATTEST
   * @param signature the TPMT_SIGNATURE over it
   * @param pcrs the selection, ascending; {@code pcrValues} their SHA-256 values in that order
   */
  public record Quote(byte[] attest, byte[] signature, int[] pcrs, byte[][] pcrValues, byte[] akTpmtPublic) {}

  public EndorsementKey endorsementKey(EkType type) {
    return run(s -> {
      s.flushAllCached();
      CreatePrimaryResponse ek = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), template(type));
      try {
        byte[] pub = ek.outPublic.toBytes();
        byte[] cert = readNv(s, type == EkType.RSA_2048 ? EkTemplates.NV_EK_CERT_RSA : EkTemplates.NV_EK_CERT_ECC);
        return new EndorsementKey(type, pub, Templates.name(pub), cert);
      } finally {
        s.flush(ek.handle);
      }
    });
  }

  public AttestationKey attestationKey() {
    return run(s -> {
      s.flushAllCached();
      CreatePrimaryResponse ak = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), akTemplate.get());
      s.flush(ak.handle);
      byte[] pub = ak.outPublic.toBytes();
      return new AttestationKey(pub, Templates.name(pub));
    });
  }

  private record Activated(byte[] secret, CredentialActivation.ActivationException refused) {}

  /**
   * TPM2_ActivateCredential of a credential made for this TPM's EK of {@code type} and the AK's name.
   *
   * @return the secret
   * @throws CredentialActivation.ActivationException when the TPM refuses it (another key's name,
   *     another TPM's EK, altered)
   */
  public byte[] activateCredential(EkType type, CredentialActivation.Credential credential)
      throws CredentialActivation.ActivationException {
    Activated a = run(s -> {
      s.flushAllCached();
      CreatePrimaryResponse ek = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), template(type));
      try {
        CreatePrimaryResponse ak = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), akTemplate.get());
        try {
          return new Activated(CredentialActivation.activate(s, ak.handle.handle, ek.handle.handle,
              credential.credentialBlob(), credential.encryptedSecret()), null);
        } catch (CredentialActivation.ActivationException e) {
          return new Activated(null, e);
        } finally {
          s.flush(ak.handle);
        }
      } finally {
        s.flush(ek.handle);
      }
    });
    if (a.refused() != null) throw a.refused();
    return a.secret();
  }

  /**
   * TPM2_Quote by the AK over SHA-256 PCRs, the scheme the AK's (ECDSA SHA-256), and the PCR
   * values read after it without releasing the TPM.
   *
   * @param pcrs 1 to 24 PCR indexes 0..23
   * @param nonce the verifier's nonce (qualifyingData), at most 64 bytes
   */
  public Quote quote(int[] pcrs, byte[] nonce) {
    int[] sorted = Pcrs.normalize(pcrs);
    if (nonce.length > MAX_NONCE) throw new IllegalArgumentException("the nonce has at most 64 bytes");
    return run(s -> {
      s.flushAllCached();
      CreatePrimaryResponse ak = s.createPrimary(TPM_HANDLE.from(TPM_RH.ENDORSEMENT), akTemplate.get());
      try {
        return quote(s, ak.handle.handle, ak.outPublic.toBytes(), sorted, nonce);
      } finally {
        s.flush(ak.handle);
      }
    });
  }

  /**
   * TPM2_Quote by a loaded AK (empty auth, its own scheme) and the PCR values read after it. Call
   * under the connection's lock ({@link TpmConnection#execute}).
   *
   * @param pcrs ascending, distinct PCRs of 0..23
   */
  public static Quote quote(TpmSession s, int akHandle, byte[] akTpmtPublic, int[] pcrs, byte[] nonce) {
    byte[] body = new Marshal().u32(akHandle).bytes(passwordAuth()).tpm2b(nonce)
        .u16(TpmtPublic.ALG_NULL).bytes(Pcrs.selection(pcrs)).toBytes();
    byte[] r = s.raw("Quote", CredentialActivation.sessionsCommand(CC_QUOTE, body));
    ByteBuffer b = ByteBuffer.wrap(r, 10, r.length - 10);
    int paramSize = b.getInt();
    byte[] attest = Marshal.tpm2b(b);
    byte[] signature = new byte[paramSize - 2 - attest.length];
    b.get(signature);
    return new Quote(attest, signature, pcrs.clone(), readPcrs(s, pcrs), akTpmtPublic.clone());
  }

  /** The PCRs' SHA-256 values, in ascending PCR order. */
  public byte[][] readPcrs(int[] pcrs) {
    int[] sorted = Pcrs.normalize(pcrs);
    return run(s -> readPcrs(s, sorted));
  }

  /**
   * TPM2_PCR_Extend of the SHA-256 bank (a measuring agent's step; the caller logs the event).
   * PCRs 0-15 can only be extended at locality 0 by the platform's own components in practice;
   * tests use PCR 16 (debug) or 23 (application).
   */
  public void extendPcr(int pcr, byte[] sha256Digest) {
    if (pcr < 0 || pcr > 23) throw new IllegalArgumentException("PCR " + pcr);
    if (sha256Digest.length != 32) throw new IllegalArgumentException("a SHA-256 digest has 32 bytes");
    byte[] body = new Marshal().u32(pcr).bytes(passwordAuth()).u32(1).u16(TpmtPublic.ALG_SHA256).bytes(sha256Digest)
        .toBytes();
    run(s -> s.raw("PCR_Extend", CredentialActivation.sessionsCommand(CC_PCR_EXTEND, body)));
  }

  /** TPM2_PCR_Reset: allowed at locality 0 for PCRs 16 and 23 only. */
  public void resetPcr(int pcr) {
    byte[] body = new Marshal().u32(pcr).bytes(passwordAuth()).toBytes();
    run(s -> s.raw("PCR_Reset", CredentialActivation.sessionsCommand(CC_PCR_RESET, body)));
  }

  /** An authorization area with one empty password session. */
  private static byte[] passwordAuth() {
    Marshal auth = new Marshal().u32(Marshal.RS_PW).u16(0).u8(0).u16(0);
    return new Marshal().u32(auth.size()).bytes(auth.toBytes()).toBytes();
  }

  /**
   * Reads in groups of 8 (what one TPM2_PCR_Read returns) and retries when pcrUpdateCounter moved
   * between the groups, so the values are one state.
   */
  static byte[][] readPcrs(TpmSession s, int[] sorted) {
    for (int attempt = 0; attempt < 3; attempt++) {
      byte[][] values = new byte[sorted.length][];
      Integer counter = null;
      boolean consistent = true;
      for (int from = 0; from < sorted.length; from += 8) {
        int[] group = Arrays.copyOfRange(sorted, from, Math.min(sorted.length, from + 8));
        byte[] r = s.raw("PCR_Read", Marshal.command(CC_PCR_READ, Pcrs.selection(group)));
        ByteBuffer b = ByteBuffer.wrap(r, 10, r.length - 10);
        int c = b.getInt();
        if (counter != null && counter != c) consistent = false;
        counter = c;
        int banks = b.getInt();
        for (int i = 0; i < banks; i++) {
          b.getShort(); // hash
          int size = b.get() & 0xff;
          b.position(b.position() + size);
        }
        int count = b.getInt();
        if (count != group.length) {
          throw new IllegalStateException("the TPM returned " + count + " of " + group.length
              + " SHA-256 PCR values: is its SHA-256 bank allocated?");
        }
        for (int i = 0; i < count; i++) values[from + i] = Marshal.tpm2b(b);
      }
      if (consistent) return values;
    }
    throw new IllegalStateException("the PCRs kept changing while they were read");
  }

  private static TPMT_PUBLIC template(EkType type) {
    return type == EkType.RSA_2048 ? EkTemplates.rsa2048() : EkTemplates.eccP256();
  }

  private static byte[] readNv(TpmSession s, int index) {
    TPM_HANDLE nv = new TPM_HANDLE(index);
    NV_ReadPublicResponse p;
    try {
      p = s.run("NV_ReadPublic", () -> s.tpm().NV_ReadPublic(nv));
    } catch (TpmRcException e) {
      return null; // not defined
    }
    int size = p.nvPublic.dataSize;
    ByteArrayOutputStream out = new ByteArrayOutputStream(size);
    nv.AuthValue = new byte[0];
    nv.Name = p.nvName;
    for (int off = 0; off < size; off += NV_CHUNK) {
      int n = Math.min(NV_CHUNK, size - off);
      int o = off;
      out.writeBytes(s.run("NV_Read", () -> s.tpm().NV_Read(nv, nv, n, o)));
    }
    return out.toByteArray();
  }

  private <T> T run(Function<TpmSession, T> op) {
    try {
      return connection.execute(op);
    } catch (BackendException e) {
      if (e.getCause() instanceof IllegalArgumentException iae) throw iae;
      throw e;
    }
  }
}

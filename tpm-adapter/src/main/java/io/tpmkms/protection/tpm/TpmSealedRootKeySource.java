package io.tpmkms.protection.tpm;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.software.FileRootKeySource;
import io.tpmkms.protection.software.RootKeySource;
import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.PcrPolicy;
import io.tpmkms.protection.tpm.internal.PolicyDigests;
import io.tpmkms.protection.tpm.internal.ResponseCodes;
import io.tpmkms.protection.tpm.internal.TpmRcException;
import io.tpmkms.protection.tpm.internal.PolicySession;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.jboss.logging.Logger;
import tss.tpm.TPM_HANDLE;

/**
 * The software root seed sealed by the TPM: a sealed data object (keyedHash,
 * neither sign nor decrypt) under the SRK, whose TPM2B_PUBLIC and TPM2B_PRIVATE
 * are kept in a file (mode 0600). The file alone is useless without this TPM's
 * owner seed; this TPM alone is useless without the file.
 *
 * <p>With a {@link RootSeal} policy (ADR 0034) the object can be unsealed only
 * through it: TPM2_PolicyPCR over the configured SHA-256 PCRs (their values when
 * sealed) and/or TPM2_PolicyAuthValue with an operator secret that is not in the
 * data dir; userWithAuth CLEAR, so the file plus the TPM is no longer enough. The
 * file is then {@code "TKSR" | 0x01 | flags (bit 0: secret) | k | k PCR indexes |
 * k SHA-256 values sealed to | the TpmBlob (backend 0x03)}; a file of the layout
 * before (a bare TpmBlob, no policy) is still read, and re-sealed with the policy.
 * A configuration that differs from the file's policy (other PCRs, a secret added
 * or removed, a new secret) re-seals the seed once the file's policy unsealed it:
 * the re-seal path for planned platform changes (docs/operations.md).
 *
 * <ul>
 *   <li>First use, no sealed file: the seed is 32 bytes from TPM2_GetRandom — or, if a plain
 *       seed file from an earlier run is given and exists, that seed (migration: a warning asks
 *       the operator to delete the plain file once the sealed one is backed up) — sealed and
 *       saved atomically.
 *   <li>Later uses: Load + TPM2_Unseal + FlushContext.
 * </ul>
 *
 * <p>Threading: safe; calls are serialized. Errors: KEY_INVALID if the sealed
 * file is malformed or was sealed by another TPM/owner seed; UNAVAILABLE if the
 * TPM cannot be reached; INTERNAL for file I/O failures.
 */
public final class TpmSealedRootKeySource implements RootKeySource {
  private static final Logger LOG = Logger.getLogger(TpmSealedRootKeySource.class);

  private final TpmConnection connection;
  private final Path sealedFile;
  private final Path plainSeedFile;
  private final RootSeal seal;

  /**
   * @param sealedFile where the sealed object lives (e.g. {@code software-root.sealed})
   * @param plainSeedFile a plain seed file of an earlier run to migrate, or null
   */
  public TpmSealedRootKeySource(TpmConnection connection, Path sealedFile, Path plainSeedFile) {
    this(connection, sealedFile, plainSeedFile, RootSeal.NONE);
  }

  /** @param seal the policy the seed is (re-)sealed with */
  public TpmSealedRootKeySource(TpmConnection connection, Path sealedFile, Path plainSeedFile, RootSeal seal) {
    if (connection == null || sealedFile == null || seal == null) {
      throw new IllegalArgumentException("connection, file and seal policy required");
    }
    this.connection = connection;
    this.sealedFile = sealedFile.toAbsolutePath();
    this.plainSeedFile = plainSeedFile;
    this.seal = seal;
  }

  public Path sealedFile() { return sealedFile; }

  @Override
  public synchronized byte[] rootSeed() {
    if (Files.exists(sealedFile)) {
      Sealed file = Sealed.decode(read(), sealedFile);
      // the recovery branch only when the normal one fails (a recovery key left configured must not turn the
      // PCR binding off: every start would unseal whatever the platform state and re-seal to it)
      boolean recovering = false;
      byte[] seed;
      if (seal.recoveryKey() == null) {
        seed = unseal(file);
      } else {
        try {
          seed = unseal(file);
          LOG.warnf("tpmkms.backend.tpm.root-recovery-key-file is set but the root seed in %s unsealed normally: the "
              + "recovery key was not used. Remove the setting and take the private key off this host", sealedFile);
        } catch (BackendException normalFailed) {
          if (normalFailed.kind() != Kind.KEY_INVALID) throw normalFailed;
          LOG.warnf("the root seed in %s does not unseal through its normal policy (%s); recovering with the root "
              + "recovery key", sealedFile, normalFailed.getMessage());
          seed = recover(file);
          recovering = true;
        }
      }
      RootSeal target = seal.newSecret() != null ? seal.withSecret(seal.newSecret()).withNewSecret(null) : seal;
      if (target.recoveryPublicArea() == null && recovering) {
        target = new RootSeal(target.pcrs(), target.secret(), null, file.recovery(), null); // keep the branch
      }
      if (!Arrays.equals(file.pcrs(), target.pcrs()) || file.secret() != (target.secret() != null)
          || seal.newSecret() != null || !Arrays.equals(file.recovery(), target.recoveryPublicArea()) || recovering) {
        seal(seed, target);
        LOG.infof("re-sealed the software root seed in %s: from %s to %s%s", sealedFile,
            RootSeal.describe(file.pcrs(), file.secret()) + (file.recovery() != null ? " with a recovery key" : ""),
            target.describe() + (target.recoveryPublicArea() != null ? " with a recovery key" : ""),
            seal.newSecret() != null
                ? " (the new operator secret: make it the secret file now and remove the new-secret setting)" : "");
      }
      if (recovering) {
        LOG.warnf("RECOVERED the software root seed in %s with the root recovery key and re-sealed it to the platform "
            + "state now (%s). Remove tpmkms.backend.tpm.root-recovery-key-file and take the private key off this host "
            + "again; find out what changed the platform state", sealedFile, target.describe());
      }
      warnWithoutPolicy();
      return seed;
    }
    if (seal.recoveryKey() != null) {
      throw new BackendException(Kind.KEY_INVALID, "a root recovery key is set but there is no sealed root seed ("
          + sealedFile + ") to recover");
    }
    if (seal.newSecret() != null) {
      throw new BackendException(Kind.KEY_INVALID, "a new operator secret is set but there is no sealed root seed ("
          + sealedFile + ") to re-seal");
    }
    byte[] seed;
    if (plainSeedFile != null && Files.exists(plainSeedFile)) {
      seed = new FileRootKeySource(plainSeedFile).rootSeed();
      LOG.warnf("migrating the plain root seed %s into the TPM-sealed %s; delete the plain file once the "
          + "sealed file is backed up", plainSeedFile, sealedFile);
    } else {
      seed = connection.execute(s -> TpmKeyProtectionBackend.random(s, SEED_LENGTH));
    }
    seal(seed, seal);
    LOG.infof("sealed the software root seed to the TPM in %s (%s)", sealedFile, seal.describe());
    warnWithoutPolicy();
    return seed;
  }

  private void warnWithoutPolicy() {
    if (!seal.hasPolicy()) {
      LOG.warnf("the sealed root seed %s has no policy: whoever can use this TPM and read the data dir can unseal "
          + "it (tpm2_load + tpm2_unseal). Bind it to PCRs and/or an operator secret (docs/operations.md)", sealedFile);
    }
  }

  /** The sealed file: the object, and the policy it was sealed with (none for a file of the layout before). */
  record Sealed(TpmBlob blob, int[] pcrs, byte[][] values, boolean secret, byte[] recovery) {
    static final byte[] MAGIC = "TKSR".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    static final int FLAG_SECRET = 0x01;
    /** A recovery branch: the recovery key's TPMT_PUBLIC follows the values, as a TPM2B. */
    static final int FLAG_RECOVERY = 0x02;

    boolean policy() {
      return pcrs.length > 0 || secret;
    }

    /** The normal branch: PolicyPCR and/or PolicyAuthValue. */
    byte[] normalPolicy() {
      byte[] policy = PolicyDigests.zero();
      if (pcrs.length > 0) policy = PcrPolicy.policy(policy, pcrs, PcrPolicy.digest(values));
      if (secret) policy = PolicyDigests.authValue(policy);
      return policy;
    }

    /** PolicyOR's branches when there is a recovery key: the normal one, then the recovery one. */
    byte[][] branches() {
      return new byte[][] {normalPolicy(), RootRecovery.branch(recovery)};
    }

    byte[] encode() {
      byte[] object = blob.encode();
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
      out.writeBytes(MAGIC);
      out.write(VERSION);
      out.write((secret ? FLAG_SECRET : 0) | (recovery != null ? FLAG_RECOVERY : 0));
      out.write(pcrs.length);
      for (int p : pcrs) out.write(p);
      for (byte[] v : values) out.writeBytes(v);
      if (recovery != null) {
        out.write(recovery.length >>> 8);
        out.write(recovery.length);
        out.writeBytes(recovery);
      }
      out.writeBytes(object);
      return out.toByteArray();
    }

    static Sealed decode(byte[] bytes, Path file) {
      if (bytes.length < MAGIC.length || !Arrays.equals(Arrays.copyOf(bytes, MAGIC.length), MAGIC)) {
        return new Sealed(TpmBlob.decode(bytes, TpmBlob.BACKEND_TPM_SEALED_ROOT), new int[0], new byte[0][], false, null);
      }
      try {
        ByteBuffer b = ByteBuffer.wrap(bytes, MAGIC.length, bytes.length - MAGIC.length);
        int version = b.get() & 0xff;
        if (version != VERSION) throw new IllegalArgumentException("version " + version);
        int flags = b.get() & 0xff;
        if ((flags & ~(FLAG_SECRET | FLAG_RECOVERY)) != 0) throw new IllegalArgumentException("flags " + flags);
        int k = b.get() & 0xff;
        if (k > PcrPolicy.MAX_PCRS) throw new IllegalArgumentException(k + " PCRs");
        int[] pcrs = new int[k];
        for (int i = 0; i < k; i++) pcrs[i] = b.get() & 0xff;
        if (k > 0 && !Arrays.equals(PcrPolicy.normalize(pcrs), pcrs)) throw new IllegalArgumentException("PCRs");
        byte[][] values = new byte[k][32];
        for (int i = 0; i < k; i++) b.get(values[i]);
        byte[] recovery = null;
        if ((flags & FLAG_RECOVERY) != 0) {
          int n = b.getShort() & 0xffff;
          if (n > 512) throw new IllegalArgumentException("a recovery key area of " + n + " bytes");
          recovery = new byte[n];
          b.get(recovery);
          if (k == 0 && (flags & FLAG_SECRET) == 0) throw new IllegalArgumentException("a recovery branch without a policy");
        }
        byte[] object = new byte[b.remaining()];
        b.get(object);
        Sealed s = new Sealed(TpmBlob.decode(object, TpmBlob.BACKEND_TPM_SEALED_ROOT), pcrs, values,
            (flags & FLAG_SECRET) != 0, recovery);
        if (!Arrays.equals(authPolicy(s.blob()), s.expectedPolicy())) {
          throw new IllegalArgumentException("the sealed object's authPolicy is not the policy the file names");
        }
        return s;
      } catch (java.nio.BufferUnderflowException | IllegalArgumentException e) {
        throw new BackendException(Kind.KEY_INVALID, "the sealed root seed " + file + " is malformed ("
            + e.getMessage() + ")");
      }
    }

    /** The policy digest the file's PCR values, secret flag and recovery key give. */
    byte[] expectedPolicy() {
      return recovery == null ? normalPolicy() : PolicyDigests.or(branches());
    }

    private static byte[] authPolicy(TpmBlob blob) {
      return tss.tpm.TPMT_PUBLIC.fromBytes(blob.tpmtPublic()).authPolicy;
    }
  }

  private void seal(byte[] seed, RootSeal with) {
    Sealed sealed = connection.execute(s -> {
      byte[][] values = with.pcrs().length == 0 ? new byte[0][] : PcrPolicy.read(s, with.pcrs());
      boolean secret = with.secret() != null;
      byte[] policy = new Sealed(null, with.pcrs(), values, secret, with.recoveryPublicArea()).expectedPolicy();
      byte[] auth = secret ? RootSeal.authValue(with.secret()) : new byte[0];
      // salted to the SRK: the seed and the auth value cross the bus encrypted (ADR 0028)
      byte[][] created;
      try {
        created = s.create(auth, seed, with.hasPolicy() ? Templates.sealedData(policy, secret) : Templates.sealedData());
      } finally {
        Arrays.fill(auth, (byte) 0);
      }
      byte[] tpmt = created[1];
      byte[] pub = new byte[2 + tpmt.length];
      pub[0] = (byte) (tpmt.length >>> 8);
      pub[1] = (byte) tpmt.length;
      System.arraycopy(tpmt, 0, pub, 2, tpmt.length);
      return new Sealed(new TpmBlob(TpmBlob.BACKEND_TPM_SEALED_ROOT, 0, s.srkName(),
          new byte[TpmBlob.OBJECT_ID_LENGTH], pub, created[0]), with.pcrs(), values, secret, with.recoveryPublicArea());
    });
    // the policy digest is computed here, and TPM2_Create does not check it: unseal the new object through
    // its own policy before it replaces the only file that unseals today (a wrong digest, or a PCR that
    // changed in between, would otherwise lose the seed)
    byte[] back = connection.execute(s -> unseal(s, sealed, with.secret()));
    try {
      if (!java.security.MessageDigest.isEqual(back, seed)) {
        throw new BackendException(Kind.INTERNAL, "the newly sealed root seed did not unseal to the same seed; "
            + sealedFile + " was left as it was");
      }
    } finally {
      if (back != null) Arrays.fill(back, (byte) 0);
    }
    write(sealed.policy() ? sealed.encode() : sealed.blob().encode());
  }

  private byte[] read() {
    try {
      return Files.readAllBytes(sealedFile);
    } catch (IOException e) {
      throw new BackendException(Kind.INTERNAL, "cannot read " + sealedFile, e);
    }
  }

  private byte[] unseal(Sealed file) {
    if (file.secret() && seal.secret() == null) {
      throw new BackendException(Kind.KEY_INVALID, "the root seed in " + sealedFile + " is sealed with an operator "
          + "secret and none is configured: set tpmkms.backend.tpm.root-secret-file "
          + "(TPMKMS_BACKEND_TPM_ROOT_SECRET_FILE) to the file that holds it. The service does not start; nothing was changed");
    }
    byte[] seed = connection.execute(s -> unseal(s, file, seal.secret()));
    if (seed == null || seed.length != SEED_LENGTH) {
      throw new BackendException(Kind.KEY_INVALID, "sealed root seed has the wrong length");
    }
    return seed;
  }

  /** Unseals {@code file} with {@code secret} (null: none) through the file's policy. */
  private byte[] unseal(TpmSession s, Sealed file, byte[] secret) {
    if (file.secret() && secret == null) throw new IllegalStateException("a secret is needed");
    TpmBlob blob = file.blob();
    if (!Arrays.equals(s.srkName(), blob.srkName())) {
      throw new BackendException(Kind.KEY_INVALID, "the root seed in " + sealedFile
          + " was sealed by another TPM or owner seed (SRK name mismatch); it cannot be unsealed here");
    }
    if (file.pcrs().length > 0) {
      byte[][] now = PcrPolicy.read(s, file.pcrs());
      List<String> changed = new ArrayList<>();
      for (int i = 0; i < now.length; i++) {
        if (!Arrays.equals(now[i], file.values()[i])) {
          changed.add("PCR " + file.pcrs()[i] + " is " + HexFormat.of().formatHex(now[i]) + ", sealed to "
              + HexFormat.of().formatHex(file.values()[i]));
        }
      }
      if (!changed.isEmpty()) {
        throw new BackendException(Kind.KEY_INVALID, "the platform state changed since the root seed in " + sealedFile
            + " was sealed: " + String.join("; ", changed) + ". The TPM will not unseal it, so the service does not "
            + "start; nothing was changed or deleted. A planned change (firmware, boot loader, Secure Boot keys) is "
            + "re-sealed before it is made (docs/operations.md, \"Re-sealing the root seed\"); otherwise find out what "
            + "changed in the boot chain, or boot the state it was sealed to"
            + (file.recovery() != null ? ", or recover: start once with tpmkms.backend.tpm.root-recovery-key-file "
                + "(TPMKMS_BACKEND_TPM_ROOT_RECOVERY_KEY_FILE) naming the offline recovery key" : ""));
      }
    }
    TPM_HANDLE h = s.loadUncached(blob.tpmtPublic(), blob.tpm2bPrivate(), new byte[0]);
    byte[] auth = file.secret() ? RootSeal.authValue(secret) : new byte[0];
    try {
      byte[] r;
      if (!file.policy()) {
        // the layout before ADR 0034: empty auth value, userWithAuth; a salted session encrypts the seed
        r = s.saltedSession().command("Unseal", CC_UNSEAL, new int[] {h.handle},
            new byte[][] {Templates.name(blob.tpmtPublic())}, new byte[0], new byte[0], 0, false,
            PolicySession.ENCRYPT_RESPONSE);
      } else {
        PolicySession session = s.saltedPolicySession();
        if (file.pcrs().length > 0) PcrPolicy.assertPcrs(session, file.pcrs(), PcrPolicy.digest(file.values()));
        if (file.secret()) session.policyAuthValue();
        if (file.recovery() != null) session.policyOr(file.branches());
        r = session.command("Unseal", CC_UNSEAL, new int[] {h.handle},
            new byte[][] {Templates.name(blob.tpmtPublic())}, new byte[0], auth, 0, false,
            PolicySession.ENCRYPT_RESPONSE);
      }
      try {
        return Marshal.tpm2b(ByteBuffer.wrap(r));
      } finally {
        Arrays.fill(r, (byte) 0);
      }
    } catch (TpmRcException e) {
      int base = e.base();
      if (base == ResponseCodes.AUTH_FAIL || base == 0x0A2 /* BAD_AUTH */) {
        throw new BackendException(Kind.KEY_INVALID, "the operator secret is not the one the root seed in "
            + sealedFile + " was sealed with (the TPM counts this failure towards its dictionary-attack lockout); "
            + "the service does not start, nothing was changed" + (seal.newSecret() != null ? ". A new secret is also "
            + "set: if an earlier start re-sealed with it already, make it the secret file" : ""));
      }
      if (base == ResponseCodes.LOCKOUT) {
        throw new BackendException(Kind.UNAVAILABLE, "the TPM is in dictionary-attack lockout after wrong operator "
            + "secrets; it recovers after its lockout interval, or the lockout owner clears it "
            + "(tpm2_dictionarylockout --clear-lockout)");
      }
      if (base == ResponseCodes.VALUE || base == 0x09D /* POLICY_FAIL */) {
        throw new BackendException(Kind.KEY_INVALID, "the TPM refused to unseal the root seed in " + sealedFile
            + ": its policy is not satisfied (" + e.getMessage() + "); the service does not start, nothing was changed");
      }
      throw e;
    } finally {
      Arrays.fill(auth, (byte) 0);
      s.flush(h);
    }
  }

  private static final int CC_UNSEAL = 0x15E;

  /** Unseals through the recovery branch with the configured private key, whatever the PCRs and secret. */
  private byte[] recover(Sealed file) {
    if (file.recovery() == null) {
      throw new BackendException(Kind.KEY_INVALID, "a root recovery key is set but the seed in " + sealedFile
          + " was sealed without a recovery branch; the service does not start, nothing was changed");
    }
    if (!RootRecovery.matches(seal.recoveryKey(), file.recovery())) {
      throw new BackendException(Kind.KEY_INVALID, "the root recovery key is not the one the seed in " + sealedFile
          + " was sealed with; the service does not start, nothing was changed");
    }
    byte[] seed = connection.execute(s -> {
      TpmBlob blob = file.blob();
      if (!Arrays.equals(s.srkName(), blob.srkName())) {
        throw new BackendException(Kind.KEY_INVALID, "the root seed in " + sealedFile
            + " was sealed by another TPM or owner seed (SRK name mismatch); it cannot be unsealed here");
      }
      TPM_HANDLE h = s.loadUncached(blob.tpmtPublic(), blob.tpm2bPrivate(), new byte[0]);
      try {
        PolicySession session = s.saltedPolicySession();
        RootRecovery.assertRecovery(s, session, file.recovery(), seal.recoveryKey());
        session.policyOr(file.branches());
        byte[] r = session.command("Unseal", CC_UNSEAL, new int[] {h.handle},
            new byte[][] {Templates.name(blob.tpmtPublic())}, new byte[0], new byte[0], 0, false,
            PolicySession.ENCRYPT_RESPONSE);
        try {
          return Marshal.tpm2b(ByteBuffer.wrap(r));
        } finally {
          Arrays.fill(r, (byte) 0);
        }
      } catch (TpmRcException e) {
        throw new BackendException(Kind.KEY_INVALID, "the TPM refused to unseal the root seed in " + sealedFile
            + " through its recovery branch (" + e.getMessage() + "); nothing was changed");
      } finally {
        s.flush(h);
      }
    });
    if (seed == null || seed.length != SEED_LENGTH) {
      throw new BackendException(Kind.KEY_INVALID, "sealed root seed has the wrong length");
    }
    return seed;
  }

  private void write(byte[] content) {
    try {
      Path dir = sealedFile.getParent();
      if (dir != null) Files.createDirectories(dir);
      Path tmp = Files.createTempFile(dir, "." + sealedFile.getFileName(), ".tmp",
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      try {
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
          ByteBuffer b = ByteBuffer.wrap(content);
          while (b.hasRemaining()) ch.write(b);
          ch.force(true);
        }
        Files.move(tmp, sealedFile, StandardCopyOption.ATOMIC_MOVE);
      } finally {
        Files.deleteIfExists(tmp);
      }
      if (dir != null) {
        // the rename itself durable: after a power loss the old file must not come back (a rotated secret)
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
          d.force(true);
        }
      }
    } catch (IOException e) {
      throw new BackendException(Kind.INTERNAL, "cannot write " + sealedFile, e);
    }
  }

  @Override public String toString() { return "TpmSealedRootKeySource[" + sealedFile + "]"; }
}

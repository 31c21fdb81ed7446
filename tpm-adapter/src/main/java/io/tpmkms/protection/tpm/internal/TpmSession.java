package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.tpm.TpmConfig;
import io.tpmkms.protection.tpm.TpmObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.jboss.logging.Logger;
import tss.Tpm;
import tss.tpm.CreatePrimaryResponse;
import tss.tpm.GetCapabilityResponse;
import tss.tpm.ReadPublicResponse;
import tss.tpm.TPM2B_PRIVATE;
import tss.tpm.TPML_HANDLE;
import tss.tpm.TPMS_PCR_SELECTION;
import tss.tpm.TPMS_SENSITIVE_CREATE;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPM_CAP;
import tss.tpm.TPM_HANDLE;
import tss.tpm.TPM_RH;
import tss.tpm.TPM_SU;

/**
 * One connection to one TPM and what lives in it: the SRK and an LRU of loaded
 * key objects (the TPM as a key cache). Every method must be called with the
 * owning connection's lock held; nothing here is thread-safe, and no TSS.Java
 * object leaves it.
 *
 * <p>After any I/O failure the connection is dropped ({@link #disconnect}); the
 * next {@link #ensureConnected} reconnects and, since the TPM may have restarted
 * meanwhile, treats every transient object as gone: flushes leftovers, derives
 * the SRK again and starts with an empty cache.
 */
public final class TpmSession {
  private static final Logger LOG = Logger.getLogger(TpmSession.class);
  private static final int TRANSIENT_FIRST = 0x80000000;
  private static final int HMAC_SESSION_FIRST = 0x02000000;
  private static final int POLICY_SESSION_FIRST = 0x03000000;

  private final TpmConfig config;
  private RawTpmDevice device;
  private Tpm tpm;
  private TPM_HANDLE srk;
  private byte[] srkName;
  /** The SRK's public point (x, y), for sessions salted to it. */
  private byte[] srkX;
  private byte[] srkY;
  private long epoch;
  /** Loaded objects by an opaque key (the blob), least recently used first. */
  private final LinkedHashMap<Object, TPM_HANDLE> loaded = new LinkedHashMap<>(16, 0.75f, true);
  private final PolicySession policySession = new PolicySession(this);
  private final PolicySession hmacSession = PolicySession.hmac(this);

  public TpmSession(TpmConfig config) { this.config = config; }

  public TpmConfig config() { return config; }

  /** The connection's policy session (ADR 0025), started on first use. */
  public PolicySession policySession() { return policySession; }

  /**
   * A one-shot HMAC session salted to the SRK (ADR 0028), for commands whose secrets an auth value
   * cannot protect: those authorized by the SRK (empty auth: TPM2_Create's inSensitive) and by
   * objects with an empty auth value (the sealed root seed's TPM2_Unseal).
   */
  public PolicySession saltedSession() {
    if (srkX == null) throw new IllegalStateException("the SRK's public point is not known");
    return PolicySession.salted(this, srk.handle, srkX, srkY);
  }

  /** A one-shot policy session salted to the SRK (the PCR-bound sealed root seed's TPM2_Unseal, ADR 0034). */
  public PolicySession saltedPolicySession() {
    if (srkX == null) throw new IllegalStateException("the SRK's public point is not known");
    return PolicySession.saltedPolicy(this, srk.handle, srkX, srkY);
  }

  /**
   * TPM2_Create under the SRK in a {@link #saltedSession}: inSensitive (the new object's auth value
   * and, for sealed or imported symmetric data, the data) crosses the bus encrypted. Returns
   * {TPM2B_PRIVATE with its size, TPMT_PUBLIC}.
   */
  public byte[][] create(byte[] userAuth, byte[] data, TPMT_PUBLIC template) {
    byte[] sensitive = new Marshal().tpm2b(userAuth).tpm2b(data).toBytes();
    byte[] params = new Marshal().tpm2b(sensitive).tpm2b(template.toBytes()).tpm2b(new byte[0]).u32(0).toBytes();
    try {
      byte[] r = saltedSession().command("Create", CC_CREATE, new int[] {srk.handle}, new byte[][] {srkName}, params,
          new byte[0], 0, false, PolicySession.ENCRYPT_COMMAND);
      java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(r);
      byte[] outPrivate = Marshal.sizedTpm2b(b);
      byte[] outPublic = Marshal.tpm2b(b);
      return new byte[][] {outPrivate, outPublic};
    } finally {
      java.util.Arrays.fill(sensitive, (byte) 0);
      java.util.Arrays.fill(params, (byte) 0);
    }
  }

  private static final int CC_CREATE = 0x153;

  /** The connection's HMAC session for objects used with their auth value, started on first use. */
  public PolicySession hmacSession() { return hmacSession; }

  /** Increases at every (re)connect: what a caller cached from an earlier epoch is stale. */
  public long epoch() { return epoch; }

  public boolean isConnected() { return device != null && device.isOpen(); }

  /** @return whether this call (re)connected */
  public boolean ensureConnected() {
    if (isConnected() && srk != null) return false;
    disconnect();
    RawTpmDevice d = new RawTpmDevice(config);
    d.open();
    device = d;
    tpm = new Tpm();
    tpm._setDevice(d);
    epoch++;
    try {
      startupIfNeeded();
      flushLeftovers();
      deriveSrk();
    } catch (RuntimeException e) {
      disconnect();
      throw e;
    }
    TpmObserver.current().connected(epoch > 1);
    LOG.debugf("connected to the TPM at %s (epoch %d)", d.where(), epoch);
    return true;
  }

  /** Drops the connection and forgets every transient object (they are gone or will be flushed). */
  public void disconnect() {
    if (device != null) device.close();
    device = null;
    tpm = null;
    srk = null;
    loaded.clear();
    policySession.forget();
    hmacSession.forget();
  }

  /** Flushes the cached objects and closes the connection (the SRK of a persistent handle stays). */
  public void close() {
    if (isConnected()) {
      try {
        policySession.reset();
        hmacSession.reset();
        flushAllCached();
        if (srk != null && config.persistentSrkHandle() == null) flush(srk);
      } catch (RuntimeException e) {
        LOG.debugf("flush at close failed: %s", e.getMessage());
      }
    }
    disconnect();
  }

  public byte[] srkName() { return srkName.clone(); }

  /**
   * The SRK's name as the TPM reports it now (TPM2_ReadPublic), refreshing the
   * cached one: a dead connection surfaces here as an I/O error (and the
   * caller's operation is retried after a reconnect) instead of a stale name
   * making a good blob look foreign.
   */
  public byte[] confirmSrkName() {
    ReadPublicResponse rp = run("ReadPublic", () -> tpm.ReadPublic(srk));
    srkName = Templates.name(rp.outPublic.toBytes());
    return srkName.clone();
  }

  public TPM_HANDLE srk() { return srk; }

  /** The TSS.Java command object; use only through {@link #run}. */
  public Tpm tpm() { return tpm; }

  /** The last raw response, for commands whose exact response bytes matter (Certify). */
  public byte[] lastResponse() { return device.lastResponse(); }

  /**
   * Runs one TSS.Java command without letting TSS.Java throw or print: errors are
   * allowed, then the raw response code is checked here.
   *
   * @throws TpmRcException for any response code but success
   * @throws TpmIoException when the TPM cannot be reached
   */
  public <T> T run(String command, Supplier<T> call) {
    long start = System.nanoTime();
    device.clearLastResponse();
    tpm._allowErrors();
    T result;
    try {
      result = call.get();
    } catch (TpmIoException e) {
      observe(command, start, TpmObserver.Outcome.IO_ERROR);
      throw e;
    }
    int rc = device.lastResponseCode();
    observe(command, start, outcome(rc));
    if (rc != 0) throw new TpmRcException(command, rc);
    return result;
  }

  private static void observe(String command, long start, TpmObserver.Outcome outcome) {
    TpmObserver.current().command(command, System.nanoTime() - start, outcome);
  }

  static TpmObserver.Outcome outcome(int rc) {
    if (rc == 0) return TpmObserver.Outcome.OK;
    if (ResponseCodes.isRetryable(rc)) return TpmObserver.Outcome.RETRY;
    if (ResponseCodes.isObjectMemory(rc)) return TpmObserver.Outcome.MEMORY;
    return ResponseCodes.isAuthorization(rc) ? TpmObserver.Outcome.AUTH : TpmObserver.Outcome.TPM_ERROR;
  }

  /**
   * Sends a command marshalled by the caller (for commands whose parameters hold secrets the
   * caller zeroes afterwards: TSS.Java would keep copies in its buffers) and returns the whole
   * response, header included.
   *
   * @throws TpmRcException for any response code but success
   * @throws TpmIoException when the TPM cannot be reached
   */
  public byte[] raw(String command, byte[] marshalled) {
    long start = System.nanoTime();
    device.clearLastResponse();
    byte[] response;
    try {
      device.dispatchCommand(marshalled);
      response = device.getResponse();
    } catch (TpmIoException e) {
      observe(command, start, TpmObserver.Outcome.IO_ERROR);
      throw e;
    }
    int rc = device.lastResponseCode();
    observe(command, start, outcome(rc));
    if (rc != 0) throw new TpmRcException(command, rc);
    return response;
  }

  public void run(String command, Runnable call) {
    run(command, () -> {
      call.run();
      return null;
    });
  }

  // --- startup, SRK ---------------------------------------------------------------------

  private void startupIfNeeded() {
    try {
      run("GetRandom", () -> tpm.GetRandom(1));
    } catch (TpmRcException e) {
      if (e.base() != ResponseCodes.INITIALIZE) throw e;
      LOG.info("TPM not started; sending TPM2_Startup(CLEAR)");
      run("Startup", () -> tpm.Startup(TPM_SU.CLEAR));
    }
  }

  private void flushLeftovers() {
    List<TPM_HANDLE> handles = new ArrayList<>();
    for (int first : new int[] {TRANSIENT_FIRST, HMAC_SESSION_FIRST, POLICY_SESSION_FIRST}) {
      GetCapabilityResponse r = run("GetCapability", () -> tpm.GetCapability(TPM_CAP.HANDLES, first, 64));
      if (r.capabilityData instanceof TPML_HANDLE list && list.handle != null) {
        for (TPM_HANDLE h : list.handle) handles.add(h);
      }
    }
    for (TPM_HANDLE h : handles) {
      int type = h.handle >>> 24;
      if (type == 0x80 || type == 0x02 || type == 0x03) flush(h);
    }
    if (!handles.isEmpty()) LOG.infof("flushed %d leftover transient objects", handles.size());
  }

  private void deriveSrk() {
    Integer persistent = config.persistentSrkHandle();
    if (persistent == null) {
      CreatePrimaryResponse r = createPrimary(TPM_HANDLE.from(TPM_RH.OWNER), Templates.srk());
      srk = r.handle;
      srkName = Templates.name(r.outPublic.toBytes());
      srkPoint(r.outPublic);
      return;
    }
    TPM_HANDLE p = TPM_HANDLE.persistent(persistent & 0x00FFFFFF);
    p.handle = persistent;
    try {
      ReadPublicResponse rp = run("ReadPublic", () -> tpm.ReadPublic(p));
      byte[] expected = ((tss.TpmStructure) Templates.srk().parameters).toBytes();
      if (!java.util.Arrays.equals(expected, ((tss.TpmStructure) rp.outPublic.parameters).toBytes())
          || rp.outPublic.objectAttributes.toInt() != Templates.srk().objectAttributes.toInt()) {
        throw new TpmRcException("ReadPublic(persistent SRK: not made from our template)", ResponseCodes.TYPE);
      }
      srk = p;
      srkName = Templates.name(rp.outPublic.toBytes());
      srkPoint(rp.outPublic);
    } catch (TpmRcException e) {
      if (e.base() != ResponseCodes.HANDLE) throw e;
      CreatePrimaryResponse r = createPrimary(TPM_HANDLE.from(TPM_RH.OWNER), Templates.srk());
      run("EvictControl", () -> tpm.EvictControl(TPM_HANDLE.from(TPM_RH.OWNER), r.handle, p));
      flush(r.handle);
      srk = p;
      srkName = Templates.name(r.outPublic.toBytes());
      srkPoint(r.outPublic);
      LOG.infof("persisted the SRK at 0x%08x", persistent);
    }
  }

  private void srkPoint(TPMT_PUBLIC pub) {
    if (!(pub.unique instanceof tss.tpm.TPMS_ECC_POINT point)) {
      throw new TpmRcException("CreatePrimary(SRK is not an ECC key)", ResponseCodes.TYPE);
    }
    srkX = point.x.clone();
    srkY = point.y.clone();
  }

  public CreatePrimaryResponse createPrimary(TPM_HANDLE hierarchy, TPMT_PUBLIC template) {
    return run("CreatePrimary", () -> tpm.CreatePrimary(hierarchy,
        new TPMS_SENSITIVE_CREATE(new byte[0], new byte[0]), template, new byte[0], new TPMS_PCR_SELECTION[0]));
  }

  // --- the object cache -----------------------------------------------------------------

  /**
   * The handle of the object loaded for {@code key}, loading it under the SRK
   * if needed (evicting the least recently used object when the cache is full).
   */
  public TPM_HANDLE load(Object key, byte[] tpmtPublic, byte[] tpm2bPrivate, byte[] authValue) {
    TPM_HANDLE h = loaded.get(key);
    if (h != null) return h;
    ensureFreeSlots(1);
    TPMT_PUBLIC pub = TPMT_PUBLIC.fromBytes(tpmtPublic);
    TPM2B_PRIVATE priv = TPM2B_PRIVATE.fromBytes(tpm2bPrivate);
    TPM_HANDLE handle = run("Load", () -> tpm.Load(srk, priv, pub));
    handle.AuthValue = authValue;
    loaded.put(key, handle);
    TpmObserver.current().objectLoaded();
    return handle;
  }

  /** Loads an object that is not cached (the caller flushes it): sealed data. */
  public TPM_HANDLE loadUncached(byte[] tpmtPublic, byte[] tpm2bPrivate, byte[] authValue) {
    ensureFreeSlots(1);
    TPMT_PUBLIC pub = TPMT_PUBLIC.fromBytes(tpmtPublic);
    TPM2B_PRIVATE priv = TPM2B_PRIVATE.fromBytes(tpm2bPrivate);
    TPM_HANDLE handle = run("Load", () -> tpm.Load(srk, priv, pub));
    handle.AuthValue = authValue;
    return handle;
  }

  /** Flushes least recently used objects until {@code n} more fit. */
  public void ensureFreeSlots(int n) {
    Iterator<Map.Entry<Object, TPM_HANDLE>> it = loaded.entrySet().iterator();
    while (loaded.size() + n > config.maxLoadedObjects() && it.hasNext()) {
      TPM_HANDLE h = it.next().getValue();
      it.remove();
      flush(h);
      TpmObserver.current().objectEvicted();
    }
  }

  /** Flushes every cached object except the one for {@code keep} (null: all). */
  public void flushAllCachedExcept(Object keep) {
    Iterator<Map.Entry<Object, TPM_HANDLE>> it = loaded.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<Object, TPM_HANDLE> e = it.next();
      if (keep != null && keep.equals(e.getKey())) continue;
      it.remove();
      flush(e.getValue());
    }
  }

  public void flushAllCached() { flushAllCachedExcept(null); }

  /** Drops the object for the key, flushing it if loaded. */
  public void evict(Object key) {
    TPM_HANDLE h = loaded.remove(key);
    if (h != null && isConnected()) flush(h);
  }

  public int loadedCount() { return loaded.size(); }

  /** Flushes a transient object; a handle the TPM no longer knows is fine. */
  public void flush(TPM_HANDLE h) {
    try {
      run("FlushContext", () -> tpm.FlushContext(h));
    } catch (TpmRcException e) {
      LOG.debugf("FlushContext 0x%08x: %s", h.handle, e.getMessage());
    }
  }
}

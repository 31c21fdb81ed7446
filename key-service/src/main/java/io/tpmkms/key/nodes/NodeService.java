package io.tpmkms.key.nodes;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.tpmkms.key.KmsConfig;
import io.tpmkms.key.crypto.CryptoService;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.nodes.NodeEntity.State;
import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.protection.tpm.attest.CredentialActivation;
import io.tpmkms.protection.tpm.attest.EkCertificateValidator;
import io.tpmkms.protection.tpm.attest.EkTemplates;
import io.tpmkms.protection.tpm.attest.EventLog;
import io.tpmkms.protection.tpm.attest.QuoteVerifier;
import io.tpmkms.protection.tpm.attest.TpmtPublic;
import io.tpmkms.protection.tpm.internal.Templates;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;
import jakarta.persistence.LockModeType;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * Nodes, the Keylime way (ADR 0038; seeds 003 and 004): enrollment binds a node's AK to its EK
 * (certificate chained to a configured manufacturer CA) by credential activation; attestation checks
 * a quote with a fresh single-use nonce, replays the event log to the quoted PCRs and compares them
 * with the node's golden values; a release delivers a fresh data key only to a TRUSTED node whose
 * last attestation is fresh, as a credential only its TPM can activate.
 *
 * <p>Every state change is one transaction with its audit event (as the key lifecycle does it). A
 * failed attestation is a state change too (UNTRUSTED, with the reason), not an error.
 */
@ApplicationScoped
public class NodeService {
  private static final Logger LOG = Logger.getLogger(NodeService.class);
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");
  private static final int SECRET = 32;
  private static final int[] DEFAULT_PCRS = {0, 1, 2, 3, 4, 5, 6, 7};
  private static final int MAX_TPM_STRUCTURE = 4096;
  private static final int MAX_CERTIFICATE = 8192;
  /** The key service takes gRPC messages of at most 1 MiB; a log must fit with the quote. */
  private static final int MAX_EVENT_LOG = 1000 * 1024;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final EntityManager em;
  private final AuditLog audit;
  private final CryptoService crypto;
  private final KmsConfig config;
  private final io.tpmkms.key.backend.BackendRegistry backends;
  /** The name of this service's own (key attestation) AK, once read; empty without a TPM. */
  private volatile Optional<byte[]> serviceAkName;

  public NodeService(EntityManager em, AuditLog audit, CryptoService crypto, KmsConfig config,
      io.tpmkms.key.backend.BackendRegistry backends) {
    this.em = em;
    this.audit = audit;
    this.crypto = crypto;
    this.config = config;
    this.backends = backends;
  }

  /** The key attestation AK of this service's TPM: never a node's AK (ADR 0037/0038). */
  private Optional<byte[]> serviceAkName() {
    Optional<byte[]> name = serviceAkName;
    if (name == null) {
      io.tpmkms.protection.KeyProtectionBackend b;
      try {
        b = backends.forLevel(io.tpmkms.protection.ProtectionLevel.TPM);
      } catch (ServiceException noTpm) {
        b = null;
      }
      name = b instanceof io.tpmkms.protection.tpm.TpmKeyProtectionBackend tpm
          ? Optional.of(new io.tpmkms.protection.tpm.attest.TpmAttestation(tpm.connection()).attestationKey().name())
          : Optional.empty();
      serviceAkName = name;
    }
    return name;
  }

  /** EnrollNode's answer: the PENDING_ACTIVATION node and the credential for its TPM. */
  public record Enrolled(NodeEntity node, byte[] credential, Instant deadline) {}

  /** A challenge: the nonce and until when it is good, and the PCRs the quote must cover. */
  public record Challenge(byte[] nonce, Instant expireTime, int[] pcrs) {}

  /** An attestation's outcome: the node as it is now, and why it is not trusted (null: trusted). */
  public record Attested(NodeEntity node, String reason) {}

  /** A release: the credential for the node's TPM and the data key wrapped under the key. */
  public record Released(byte[] credential, byte[] wrappedDataKey, int version) {}

  // ---- enrollment ---------------------------------------------------------------------------------

  public Enrolled enroll(String name, byte[] ekPublic, byte[] ekCertificate, List<byte[]> intermediates,
      byte[] akPublic, List<Integer> pcrs, List<byte[]> golden) {
    checkName(name);
    EkCertificateValidator validator = validator();
    if (ekCertificate.length == 0 || ekCertificate.length > MAX_CERTIFICATE || intermediates.size() > 4
        || intermediates.stream().anyMatch(c -> c.length > MAX_CERTIFICATE)) {
      throw invalid(KeyReason.EK_CERTIFICATE_INVALID, "ek_certificate is required, at most 8 KiB, with at most 4 "
          + "intermediates of at most 8 KiB");
    }
    X509Certificate cert;
    try {
      cert = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new ByteArrayInputStream(ekCertificate));
    } catch (CertificateException | RuntimeException e) {
      throw invalid(KeyReason.EK_CERTIFICATE_INVALID, "ek_certificate is not a DER X.509 certificate");
    }
    byte[] expectedEk;
    try {
      expectedEk = EkTemplates.forCertifiedKey(cert.getPublicKey());
    } catch (IllegalArgumentException e) {
      throw invalid(KeyReason.EK_CERTIFICATE_INVALID, "ek_certificate: " + e.getMessage());
    }
    if (!MessageDigest.isEqual(expectedEk, ekPublic)) {
      throw invalid(KeyReason.EK_CERTIFICATE_INVALID, "ek_public is not the TCG default EK (template L-1 or L-2) "
          + "of the certified key");
    }
    EkCertificateValidator.Result chain;
    try {
      chain = validator.validate(ekCertificate, intermediates, ekPublic);
    } catch (EkCertificateValidator.EkCertificateException e) {
      throw new ServiceException(ErrorCode.INVALID_ARGUMENT, KeyReason.EK_CERTIFICATE_INVALID,
          "ek_certificate refused (" + e.reason() + "): " + e.getMessage(), Map.of("check", e.reason().name()), null);
    }
    checkAk(akPublic);
    byte[] akName = Templates.name(akPublic);
    if (serviceAkName().map(own -> MessageDigest.isEqual(own, akName)).orElse(false)) {
      throw invalid(KeyReason.ATTESTATION_KEY_INVALID, "ak_public is this key service's own key attestation AK: a node "
          + "enrolls with its node AK (Templates.nodeAk()), or ActivateAttestationCredential could unwrap its releases");
    }
    int[] selection = pcrs.isEmpty() ? DEFAULT_PCRS.clone() : selection(pcrs);
    byte[] goldenValues = golden(selection, golden);
    byte[] secret = random(SECRET);
    byte[] credential;
    try {
      credential = CredentialActivation.make(ekPublic, akName, secret).toTpm2ToolsFile();
    } catch (RuntimeException e) {
      throw invalid(KeyReason.EK_CERTIFICATE_INVALID, "no credential can be made for this EK: " + e.getMessage());
    }
    Instant now = now();
    Instant deadline = now.plus(config.attestation().activationLifetime());
    NodeEntity node = mutation(name, () -> {
      NodeEntity n = find(name, true).orElse(null);
      if (n != null) {
        if (n.state != State.PENDING_ACTIVATION || n.activationDeadline.isAfter(now)) {
          throw new ServiceException(ErrorCode.ALREADY_EXISTS, KeyReason.NODE_ALREADY_EXISTS, "node \"" + name
              + "\" exists (" + n.state + "); revoke it and enroll under another name, or wait for its activation "
              + "deadline", Map.of("node", name), null);
        }
      } else {
        n = new NodeEntity();
        n.name = name;
        n.createTime = now;
      }
      n.state = State.PENDING_ACTIVATION;
      n.ekPublic = ekPublic.clone();
      n.ekCertificate = ekCertificate.clone();
      n.ekSubject = clip(cert.getSubjectX500Principal().getName());
      n.ekIssuer = clip(cert.getIssuerX500Principal().getName());
      n.tpmManufacturer = clip64(chain.manufacturer());
      n.tpmModel = clip64(chain.model());
      n.tpmVersion = clip64(chain.version());
      n.akPublic = akPublic.clone();
      n.akName = akName;
      n.pcrs = text(selection);
      n.goldenValues = goldenValues;
      n.activationHash = sha256(secret);
      n.activationDeadline = deadline;
      if (n.id == null) em.persist(n);
      em.flush();
      return n;
    });
    Arrays.fill(secret, (byte) 0);
    LOG.infof("enrolled node %s (TPM %s %s), activation due by %s", name, node.tpmManufacturer, node.tpmModel, deadline);
    return new Enrolled(node, credential, deadline);
  }

  /** The secret the node's TPM recovered: the AK is in the TPM of the EK. One try per enrollment. */
  public NodeEntity activate(String name, byte[] secret) {
    checkName(name);
    Instant now = now();
    ServiceException[] refused = {null};
    NodeEntity node = mutation(name, () -> {
      NodeEntity n = lock(name);
      if (n.state != State.PENDING_ACTIVATION) {
        throw failed(n.state == State.REVOKED ? KeyReason.NODE_REVOKED : KeyReason.NODE_ACTIVATION_FAILED,
            "node \"" + name + "\" is " + n.state + ", not waiting for activation", name);
      }
      if (!n.activationDeadline.isAfter(now)) {
        throw failed(KeyReason.NODE_ACTIVATION_FAILED, "node \"" + name + "\"'s activation deadline "
            + n.activationDeadline + " has passed: enroll it again", name);
      }
      if (secret.length != SECRET || !MessageDigest.isEqual(sha256(secret), n.activationHash)) {
        n.activationDeadline = now; // spent: one try, a new enrollment makes a new credential
        refused[0] = failed(KeyReason.NODE_ACTIVATION_FAILED, "the secret is not the one the credential carried: "
            + "the AK is not in the TPM of the EK (or the credential went to another TPM); enroll it again", name);
        return n;
      }
      n.state = State.ENROLLED;
      n.activationHash = null;
      n.activationDeadline = null;
      n.activateTime = now;
      return n;
    }, refused);
    if (refused[0] != null) throw refused[0];
    LOG.infof("node %s activated: its AK is in the TPM of its certified EK", name);
    return node;
  }

  public NodeEntity revoke(String name) {
    checkName(name);
    Instant now = now();
    return mutation(name, () -> {
      NodeEntity n = lock(name);
      if (n.state != State.REVOKED) {
        n.state = State.REVOKED;
        n.revokeTime = now;
        n.activationHash = null;
        n.challengeNonce = null;
      }
      return n;
    });
  }

  public NodeEntity get(String name) {
    checkName(name);
    return read(() -> find(name, false)).orElseThrow(() -> notFound(name));
  }

  private static <T> T read(Supplier<T> work) {
    return QuarkusTransaction.requiringNew().call(work::get);
  }

  /** A page of nodes ordered by name, after {@code after}. */
  public List<NodeEntity> page(String after, int limit) {
    return read(() -> em.createQuery("select n from NodeEntity n where n.name > :after order by n.name", NodeEntity.class)
        .setParameter("after", after == null ? "" : after).setMaxResults(limit).getResultList());
  }

  // ---- attestation --------------------------------------------------------------------------------

  public Challenge challenge(String name) {
    checkName(name);
    Instant now = now();
    byte[] nonce = random(SECRET);
    Instant expire = now.plus(config.attestation().challengeLifetime());
    NodeEntity node = mutation(name, () -> {
      NodeEntity n = lock(name);
      attestable(n);
      n.challengeNonce = nonce;
      n.challengeDeadline = expire;
      return n;
    });
    return new Challenge(nonce, expire, node.pcrArray());
  }

  /**
   * Checks a quote and event log against the outstanding challenge; the node becomes TRUSTED or
   * UNTRUSTED (with the reason). A nonce that is not the outstanding challenge is refused
   * (FAILED_PRECONDITION CHALLENGE_INVALID) and changes nothing but spending the challenge.
   */
  public Attested attest(String name, byte[] nonce, byte[] quote, byte[] signature, byte[] eventLog) {
    checkName(name);
    if (quote.length == 0 || quote.length > MAX_TPM_STRUCTURE || signature.length == 0
        || signature.length > MAX_TPM_STRUCTURE) {
      throw invalid(KeyReason.INVALID_REQUEST, "quote and signature are required, at most 4 KiB each");
    }
    if (eventLog.length > MAX_EVENT_LOG) throw invalid(KeyReason.INVALID_REQUEST, "event_log is larger than 1,000 KiB");
    Instant now = now();
    ServiceException[] refused = {null};
    String[] why = {null};
    NodeEntity node = mutation(name, () -> {
      NodeEntity n = lock(name);
      attestable(n);
      byte[] outstanding = n.challengeNonce;
      Instant deadline = n.challengeDeadline;
      n.challengeNonce = null;
      n.challengeDeadline = null;
      if (outstanding == null || deadline == null || !deadline.isAfter(now) || !MessageDigest.isEqual(outstanding, nonce)) {
        refused[0] = failed(KeyReason.CHALLENGE_INVALID, "the nonce is not node \"" + name + "\"'s outstanding "
            + "challenge (none, expired, used, or another): get a new one with GetAttestationChallenge", name);
        return n;
      }
      String forged = authentic(n, nonce, quote, signature);
      if (forged != null) {
        refused[0] = new ServiceException(ErrorCode.INVALID_ARGUMENT, KeyReason.QUOTE_INVALID, "not a quote by node \""
            + name + "\"'s AK over its challenge (" + forged + "); the node's state is unchanged, the challenge spent",
            Map.of("node", name), null);
        return n;
      }
      why[0] = verify(n, nonce, quote, signature, eventLog);
      n.lastAttestTime = now;
      if (why[0] == null) {
        n.state = State.TRUSTED;
        n.trustedTime = now;
        n.untrustedReason = null;
      } else {
        n.state = State.UNTRUSTED;
        n.untrustedReason = clip(why[0]);
      }
      return n;
    }, refused);
    if (refused[0] != null) throw refused[0];
    if (why[0] == null) {
      LOG.infof("node %s attested: TRUSTED", name);
    } else {
      LOG.warnf("node %s failed attestation: UNTRUSTED (%s)", name, why[0]);
    }
    return new Attested(node, why[0]);
  }

  /**
   * Null when the quote is signed by the node's enrolled AK over {@code nonce} (whatever its PCRs say),
   * else why not. Only such a quote may change the node's state: anyone may send garbage, or an old
   * quote of the node, and must not make it UNTRUSTED by that.
   */
  private static String authentic(NodeEntity n, byte[] nonce, byte[] quote, byte[] signature) {
    Map<Integer, byte[]> any = new LinkedHashMap<>();
    for (int p : n.pcrArray()) any.put(p, new byte[32]);
    try {
      QuoteVerifier.verify(n.akPublic, quote, signature, nonce, any);
      return null;
    } catch (QuoteVerifier.QuoteException e) {
      return switch (e.reason()) {
        case SELECTION_MISMATCH, PCR_DIGEST_MISMATCH -> null; // signed, fresh: its PCRs are judged next
        default -> e.reason() + ": " + e.getMessage();
      };
    }
  }

  /** Null when the quote, the log and the golden values agree; else "REASON: what". */
  private static String verify(NodeEntity n, byte[] nonce, byte[] quote, byte[] signature, byte[] eventLog) {
    int[] pcrs = n.pcrArray();
    Map<Integer, byte[]> golden = goldenMap(pcrs, n.goldenValues);
    Map<Integer, byte[]> expected;
    if (eventLog.length == 0) {
      if (golden == null) return "EVENT_LOG_MISSING: the node has no golden values, so its quote needs an event log";
      expected = golden;
    } else {
      try {
        expected = EventLog.parse(eventLog).replay(pcrs);
      } catch (EventLog.EventLogException e) {
        return "EVENT_LOG_MALFORMED: " + e.getMessage();
      }
    }
    try {
      QuoteVerifier.verify(n.akPublic, quote, signature, nonce, expected);
    } catch (QuoteVerifier.QuoteException e) {
      String m = e.getMessage() == null ? "" : e.getMessage();
      if (m.startsWith(e.reason() + ": ")) m = m.substring(e.reason().name().length() + 2);
      return e.reason() + ": " + m + (e.reason() == QuoteVerifier.Reason.PCR_DIGEST_MISMATCH && eventLog.length > 0
          ? " (the event log does not replay to the quoted PCRs)" : "");
    }
    if (golden != null && eventLog.length > 0) {
      List<String> differ = new ArrayList<>();
      for (int p : pcrs) {
        if (!MessageDigest.isEqual(golden.get(p), expected.get(p))) differ.add(Integer.toString(p));
      }
      if (!differ.isEmpty()) return "GOLDEN_VALUE_MISMATCH: PCR " + String.join(",", differ)
          + " differ from the node's golden values";
    }
    return null;
  }

  // ---- release ------------------------------------------------------------------------------------

  /**
   * A fresh 32-byte data key of {@code key} (GenerateDataKey), delivered to the node as a credential
   * for its EK and AK — only its TPM can activate it — and wrapped under the key.
   */
  public Released release(String name, String key, byte[] aad) {
    checkName(name);
    // decided and made under the node's row lock: a revocation or a failed attestation committed meanwhile waits,
    // or is seen — no release goes out on a state that no longer holds
    return read(() -> {
      NodeEntity n = find(name, true).orElseThrow(() -> notFound(name));
      if (n.state == State.REVOKED) throw failed(KeyReason.NODE_REVOKED, "node \"" + name + "\" is revoked", name);
      if (n.state != State.TRUSTED) {
        throw failed(KeyReason.NODE_NOT_TRUSTED, "node \"" + name + "\" is " + n.state
            + (n.untrustedReason != null ? " (" + n.untrustedReason + ")" : "") + ": only a TRUSTED node gets keys", name);
      }
      if (n.goldenValues == null) {
        throw failed(KeyReason.NODE_NOT_TRUSTED, "node \"" + name + "\" has no golden values: its attestations prove "
            + "only that its event log is consistent, not that it booted what you expect; enroll it with golden values "
            + "to release keys to it", name);
      }
      Instant fresh = now().minus(config.attestation().freshness());
      if (n.trustedTime == null || n.trustedTime.isBefore(fresh)) {
        throw failed(KeyReason.NODE_ATTESTATION_STALE, "node \"" + name + "\"'s last attestation (" + n.trustedTime
            + ") is older than " + config.attestation().freshness() + ": it must attest again first", name);
      }
      CryptoService.Result[] dk = crypto.generateDataKey(key, SECRET, aad);
      byte[] plain = dk[0].bytes();
      try {
        byte[] credential = CredentialActivation.make(n.ekPublic, n.akName, plain).toTpm2ToolsFile();
        return new Released(credential, dk[1].bytes(), dk[1].version());
      } finally {
        Arrays.fill(plain, (byte) 0);
      }
    });
  }

  // ---- helpers ------------------------------------------------------------------------------------

  private EkCertificateValidator validator() {
    Optional<String> file = config.attestation().ekCaFile();
    if (file.isEmpty()) {
      throw failed(KeyReason.ATTESTATION_NOT_CONFIGURED, "no manufacturer CAs are configured: set "
          + "tpmkms.attestation.ek-ca-file (TPMKMS_ATTESTATION_EK_CA_FILE) to a PEM bundle of the TPM vendors' CAs", "");
    }
    try {
      return EkCertificateValidator.fromPem(Files.readString(Path.of(file.get())));
    } catch (java.io.IOException | RuntimeException e) {
      LOG.errorf("cannot read the manufacturer CAs %s: %s", file.get(), e.getMessage());
      throw failed(KeyReason.ATTESTATION_NOT_CONFIGURED, "the configured manufacturer CAs cannot be read", "");
    }
  }

  /** A restricted signing key that never leaves its TPM, with the SHA-256 name algorithm. */
  private static void checkAk(byte[] akPublic) {
    if (akPublic.length == 0 || akPublic.length > MAX_TPM_STRUCTURE) {
      throw invalid(KeyReason.ATTESTATION_KEY_INVALID, "ak_public is required, at most 4 KiB");
    }
    TpmtPublic ak;
    try {
      ak = TpmtPublic.parse(akPublic);
    } catch (RuntimeException e) {
      throw invalid(KeyReason.ATTESTATION_KEY_INVALID, "ak_public is not a TPMT_PUBLIC: " + e.getMessage());
    }
    int need = Templates.RESTRICTED | Templates.SIGN | Templates.FIXED_TPM | Templates.FIXED_PARENT
        | Templates.SENSITIVE_DATA_ORIGIN;
    if ((ak.attributes() & need) != need || (ak.attributes() & Templates.DECRYPT) != 0
        || ak.nameAlg() != TpmtPublic.ALG_SHA256) {
      throw invalid(KeyReason.ATTESTATION_KEY_INVALID, "ak_public must be a restricted signing key generated in its TPM "
          + "(restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin; not decrypt) with name algorithm SHA-256");
    }
  }

  private static int[] selection(List<Integer> pcrs) {
    if (pcrs.size() > 24) throw invalid(KeyReason.INVALID_REQUEST, "pcrs: at most 24");
    int[] out = new int[pcrs.size()];
    for (int i = 0; i < out.length; i++) {
      long p = Integer.toUnsignedLong(pcrs.get(i));
      if (p > 23) throw invalid(KeyReason.INVALID_REQUEST, "pcrs: PCR " + p + " is not 0..23");
      out[i] = (int) p;
    }
    int[] sorted = out.clone();
    Arrays.sort(sorted);
    for (int i = 1; i < sorted.length; i++) {
      if (sorted[i] == sorted[i - 1]) throw invalid(KeyReason.INVALID_REQUEST, "pcrs: PCR " + sorted[i] + " twice");
    }
    if (!Arrays.equals(sorted, out)) throw invalid(KeyReason.INVALID_REQUEST, "pcrs must be ascending");
    return out;
  }

  private static byte[] golden(int[] pcrs, List<byte[]> golden) {
    if (golden.isEmpty()) return null;
    if (golden.size() != pcrs.length || golden.stream().anyMatch(g -> g.length != 32)) {
      throw invalid(KeyReason.INVALID_REQUEST, "golden_values: one 32-byte SHA-256 value per PCR, or none");
    }
    byte[] out = new byte[32 * pcrs.length];
    for (int i = 0; i < pcrs.length; i++) System.arraycopy(golden.get(i), 0, out, 32 * i, 32);
    return out;
  }

  static Map<Integer, byte[]> goldenMap(int[] pcrs, byte[] values) {
    if (values == null) return null;
    Map<Integer, byte[]> m = new LinkedHashMap<>();
    for (int i = 0; i < pcrs.length; i++) m.put(pcrs[i], Arrays.copyOfRange(values, 32 * i, 32 * i + 32));
    return m;
  }

  private static void attestable(NodeEntity n) {
    if (n.state == State.REVOKED) throw failed(KeyReason.NODE_REVOKED, "node \"" + n.name + "\" is revoked", n.name);
    if (n.state == State.PENDING_ACTIVATION) {
      throw failed(KeyReason.NODE_NOT_ACTIVATED, "node \"" + n.name + "\" has not answered its enrollment credential "
          + "(ActivateNode)", n.name);
    }
  }

  private Optional<NodeEntity> find(String name, boolean forUpdate) {
    var q = em.createQuery("select n from NodeEntity n where n.name = :name", NodeEntity.class)
        .setParameter("name", name);
    if (forUpdate) q.setLockMode(LockModeType.PESSIMISTIC_WRITE);
    return q.getResultStream().findFirst();
  }

  private NodeEntity lock(String name) {
    return find(name, true).orElseThrow(() -> notFound(name));
  }

  /**
   * A state change and its audit event in one transaction. When the work leaves a refusal in
   * {@code refused} (a spent activation or challenge: committed, then the call fails), no event is
   * written here: the pipeline records the failed call as for any other error.
   */
  private <T> T mutation(String name, Supplier<T> work) {
    return mutation(name, work, new ServiceException[1]);
  }

  private <T> T mutation(String name, Supplier<T> work, ServiceException[] refused) {
    CallInfo call = CallInfo.current();
    CallInfo c = call != null ? call : CallInfo.system("internal");
    T result;
    try {
      result = QuarkusTransaction.requiringNew().call(() -> {
        T r = work.get();
        if (refused[0] == null) audit.recordInTransaction(em, c, "node:" + name, 0);
        return r;
      });
    } catch (RuntimeException e) {
      if (isNameConflict(e)) {
        throw new ServiceException(ErrorCode.ALREADY_EXISTS, KeyReason.NODE_ALREADY_EXISTS, "node \"" + name
            + "\" exists", Map.of("node", name), null);
      }
      throw e;
    }
    if (refused[0] == null) audit.committed(c);
    return result;
  }

  private static boolean isNameConflict(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof org.hibernate.exception.ConstraintViolationException cv && cv.getConstraintName() != null
          && cv.getConstraintName().contains("kms_node_name_uk")) {
        return true;
      }
    }
    return false;
  }

  private static void checkName(String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw invalid(KeyReason.INVALID_NODE_NAME, "node name must match [a-z0-9][a-z0-9._-]{0,62}");
    }
  }

  private static ServiceException notFound(String name) {
    return ServiceException.notFound(KeyReason.NODE_NOT_FOUND, "node \"" + name + "\" not found", Map.of("node", name));
  }

  private static ServiceException invalid(KeyReason reason, String message) {
    return ServiceException.invalid(reason, message);
  }

  private static ServiceException failed(KeyReason reason, String message, String node) {
    return new ServiceException(ErrorCode.FAILED_PRECONDITION, reason, message,
        node.isEmpty() ? Map.of() : Map.of("node", node), null);
  }

  private static String text(int[] pcrs) {
    StringBuilder b = new StringBuilder();
    for (int p : pcrs) b.append(b.length() == 0 ? "" : ",").append(p);
    return b.toString();
  }

  private static String clip(String s) {
    return s == null || s.length() <= 1000 ? s : s.substring(0, 1000) + "…";
  }

  private static String clip64(String s) {
    return s == null || s.length() <= 64 ? s : s.substring(0, 64);
  }

  private static byte[] random(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  private static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Instant now() {
    return Instant.now().truncatedTo(ChronoUnit.MICROS);
  }
}

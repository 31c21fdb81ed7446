package io.tpmkms.console;

import com.google.protobuf.Timestamp;
import io.quarkus.qute.TemplateData;
import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.key.v1.KeyVersion;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** What the pages show, in words and formatted times (never key material: there is none to show). */
public final class Views {
  private Views() {}

  static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss 'UTC'")
      .withZone(ZoneOffset.UTC);

  static String time(Timestamp t) {
    if (t == null || (t.getSeconds() == 0 && t.getNanos() == 0)) return "";
    return TIME.format(Instant.ofEpochSecond(t.getSeconds(), t.getNanos()));
  }

  static String words(Enum<?> e) {
    String n = e.name();
    if (n.endsWith("_UNSPECIFIED") || n.equals("UNRECOGNIZED")) return "";
    return n;
  }

  /** May the signed-in person do it, and if not, why (the policy service's reason). */
  @TemplateData
  public record Can(boolean allowed, String reason) {
    static final Can UNKNOWN = new Can(false, "the policy service gave no answer");
  }

  @TemplateData
  public record KeyRow(String name, String namespace, String shortName, String purpose, String algorithm,
      String protection, int primary, String primaryState, String labels, String nextRotation, boolean rotationDue,
      String created, String rotationPeriod, boolean importOnly, String exportPolicy) {
    static KeyRow of(Key k) {
      String ns = k.getNamespace();
      String shortName = k.getName().startsWith(ns + "/") ? k.getName().substring(ns.length() + 1) : k.getName();
      Instant next = k.hasNextRotationTime()
          ? Instant.ofEpochSecond(k.getNextRotationTime().getSeconds()) : null;
      return new KeyRow(k.getName(), ns, shortName, words(k.getPurpose()), words(k.getAlgorithm()),
          words(k.getProtectionLevel()), k.getPrimaryVersion(),
          k.hasPrimary() ? words(k.getPrimary().getState()) : "",
          k.getLabelsMap().entrySet().stream().sorted(Map.Entry.comparingByKey())
              .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", ")),
          k.hasNextRotationTime() ? time(k.getNextRotationTime()) : "",
          next != null && next.isBefore(Instant.now()),
          time(k.getCreateTime()),
          k.hasRotationPeriod() ? java.time.Duration.ofSeconds(k.getRotationPeriod().getSeconds()).toString()
              .substring(2).toLowerCase(java.util.Locale.ROOT) : "",
          k.getImportOnly(), words(k.getExportPolicy()));
    }
  }

  @TemplateData
  public record VersionRow(int version, String state, String algorithm, String protection, boolean primary,
      String created, String destroyTime, String destroyedAt, String compromisedAt, boolean hasPublicKey,
      boolean imported) {
    static VersionRow of(KeyVersion v) {
      return new VersionRow(v.getVersion(), words(v.getState()), words(v.getAlgorithm()),
          words(v.getProtectionLevel()), v.getPrimary(), time(v.getCreateTime()), time(v.getDestroyTime()),
          time(v.getDestroyEventTime()), time(v.getCompromiseTime()), !v.getPublicKeyPem().isEmpty(),
          v.getImported());
    }

    public boolean enabled() {
      return state.equals("ENABLED");
    }

    public boolean disabled() {
      return state.equals("DISABLED");
    }

    public boolean scheduled() {
      return state.equals("DESTROY_SCHEDULED");
    }

    public boolean gone() {
      return state.equals("DESTROYED") || state.equals("COMPROMISED");
    }
  }

  /** A version whose destruction is scheduled (restorable until {@code destroyTime}). */
  @TemplateData
  public record Destruction(String key, String namespace, String shortName, int version, String destroyTime) {
    static Destruction of(Key k, KeyVersion v) {
      int slash = k.getName().indexOf('/');
      return new Destruction(k.getName(), k.getName().substring(0, slash), k.getName().substring(slash + 1),
          v.getVersion(), time(v.getDestroyTime()));
    }
  }

  @TemplateData
  public record RecordRow(long sequence, String time, String service, String principal, String operation,
      String key, int keyVersion, String decision, String decisionReason, String outcome, String outcomeReason,
      String requestId, String details, String deliveredBy, String hash) {
    static RecordRow of(io.tpmkms.proto.audit.v1.AuditRecord r) {
      var e = r.getEvent();
      return new RecordRow(r.getSequence(), Views.time(e.getTime()), e.getService(), e.getPrincipal(), e.getOperation(),
          e.getKey(), e.getKeyVersion(), words(e.getDecision()), e.getDecisionReason(), e.getOutcome(),
          e.getOutcomeReason(), e.getRequestId(), e.getDetails(), r.getDeliveredBy(),
          java.util.HexFormat.of().formatHex(r.getHash().toByteArray()));
    }
  }

  /** The keys list's filters, as the form shows them. */
  @TemplateData
  public record KeyFilter(String namespace, String label, String purpose, String protection, String state,
      String name) {
  }

  static List<String> names(Enum<?>[] values) {
    return java.util.Arrays.stream(values).map(Views::words).filter(s -> !s.isEmpty()).toList();
  }
}

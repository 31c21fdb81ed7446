package io.tpmkms.cli.format;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditRecord;
import io.tpmkms.proto.audit.v1.Checkpoint;
import io.tpmkms.proto.audit.v1.VerifyChainResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.io.PrintStream;
import java.time.Instant;
import java.util.HexFormat;

/**
 * The human-readable views of audit records, chain verification and checkpoints. Record fields
 * are producer-supplied text: control and bidi characters are shown escaped (ESC as backslash-u001b), so
 * a record cannot rewrite the terminal or the table.
 */
public final class AuditViews {

    /** Hex characters of a hash shown in tables; the single-checkpoint view shows all 64. */
    public static final int SHORT_HASH = 16;

    private static final String KEY_SERVICE_PREFIX = KeyServiceGrpc.SERVICE_NAME + "/";

    private AuditViews() {
    }

    public static void recordTable(Iterable<AuditRecord> records, PrintStream out) {
        Table table = new Table("SEQ", "TIME", "PRINCIPAL", "OPERATION", "KEY", "VERSION", "OUTCOME", "REASON",
                "REQUEST ID");
        for (AuditRecord r : records) {
            AuditEvent e = r.getEvent();
            table.row(Long.toUnsignedString(r.getSequence()), TimeText.show(e.getTime()), text(e.getPrincipal()),
                    text(shortOperation(e.getOperation())), text(e.getKey()),
                    e.getKeyVersion() == 0 ? "-" : Integer.toUnsignedString(e.getKeyVersion()),
                    text(e.getOutcome()), text(e.getOutcomeReason()), text(e.getRequestId()));
        }
        table.print(out);
    }

    public static void verification(VerifyChainResponse v, PrintStream out) {
        new Table("records checked:", Long.toUnsignedString(v.getRecordsChecked()))
                .row("checkpoints checked:", Long.toUnsignedString(v.getCheckpointsChecked()))
                .row("head sequence:", Long.toUnsignedString(v.getHeadSequence()))
                .row("head hash:", hex(v.getHeadHash()))
                .print(out);
    }

    public static void checkpointTable(Iterable<Checkpoint> checkpoints, PrintStream out) {
        Table table = new Table("SEQ", "TIME", "ANCHOR", "HEAD HASH");
        for (Checkpoint c : checkpoints) {
            table.row(Long.toUnsignedString(c.getSequence()), TimeText.show(c.getTime()), text(c.getAnchor()),
                    shortHex(c.getHeadHash()));
        }
        table.print(out);
    }

    /** Every field, the time exact (it is signed to the nanosecond), then the signing key's PEM. */
    public static void checkpoint(Checkpoint c, PrintStream out) {
        new Table("sequence:", Long.toUnsignedString(c.getSequence()))
                .row("time:", exactTime(c.getTime()))
                .row("anchor:", text(c.getAnchor()))
                .row("head hash:", hex(c.getHeadHash()))
                .row("anchor value:", hex(c.getAnchorValue()))
                .row("signature:", hex(c.getSignature()))
                .row("signing key:", c.getSigningKeyPem().isBlank() ? "-" : "")
                .print(out);
        if (!c.getSigningKeyPem().isBlank()) {
            String pem = c.getSigningKeyPem().strip();
            for (String line : pem.split("\r?\n")) {
                out.println(escape(line));
            }
        }
    }

    /** {@code tpmkms.key.v1.KeyService/Encrypt} as {@code Encrypt}; other operations in full. */
    public static String shortOperation(String operation) {
        return operation.startsWith(KEY_SERVICE_PREFIX) && operation.length() > KEY_SERVICE_PREFIX.length()
                ? operation.substring(KEY_SERVICE_PREFIX.length()) : operation;
    }

    public static String hex(ByteString bytes) {
        return bytes.isEmpty() ? "-" : HexFormat.of().formatHex(bytes.toByteArray());
    }

    public static String shortHex(ByteString bytes) {
        String hex = hex(bytes);
        return hex.length() > SHORT_HASH ? hex.substring(0, SHORT_HASH) + "..." : hex;
    }

    static String exactTime(Timestamp t) {
        if (t.getSeconds() == 0 && t.getNanos() == 0) {
            return "-";
        }
        return Instant.ofEpochSecond(t.getSeconds(), t.getNanos()).toString();
    }

    /** A table cell: {@code -} for empty, unprintable characters escaped. */
    static String text(String s) {
        return s.isEmpty() ? "-" : escape(s);
    }

    /**
     * Escapes C0/C1 controls, DEL, and the bidi embedding, override and isolate characters as a
     * backslash, {@code u} and four hex digits; a backslash followed by {@code u} is escaped too, so
     * the escaped form is unambiguous.
     */
    public static String escape(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            boolean bad = ch < 0x20 || (ch >= 0x7f && ch <= 0x9f) || (ch >= 0x202a && ch <= 0x202e)
                    || (ch >= 0x2066 && ch <= 0x2069) || ch == 0x200e || ch == 0x200f
                    || (ch == '\\' && i + 1 < s.length() && s.charAt(i + 1) == 'u');
            if (bad && b == null) {
                b = new StringBuilder(s.length() + 16).append(s, 0, i);
            }
            if (b != null) {
                if (bad) {
                    b.append(String.format("\\u%04x", (int) ch));
                } else {
                    b.append(ch);
                }
            }
        }
        return b == null ? s : b.toString();
    }
}

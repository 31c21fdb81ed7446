package io.tpmkms.cli.nodes;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.format.Table;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.proto.key.v1.Node;
import io.tpmkms.proto.key.v1.NodeState;
import java.io.PrintStream;
import java.util.HexFormat;
import java.util.stream.Collectors;

/** The human-readable views of nodes (ADR 0038): a table for lists, aligned fields for one. */
public final class NodeViews {

    private NodeViews() {
    }

    public static void nodeTable(Iterable<Node> nodes, PrintStream out) {
        Table table = new Table("NAME", "STATE", "TPM", "LAST ATTESTED", "REASON");
        for (Node n : nodes) {
            table.row(n.getName(), state(n.getState()), tpm(n), TimeText.show(n.getLastAttestTime()),
                    n.getUntrustedReason().isEmpty() ? "-" : n.getUntrustedReason());
        }
        table.print(out);
    }

    public static void node(Node n, PrintStream out) {
        new Table("name:", n.getName())
                .row("state:", state(n.getState()))
                .row("EK subject:", dash(n.getEkCertificateSubject()))
                .row("EK issuer:", dash(n.getEkCertificateIssuer()))
                .row("TPM:", tpm(n))
                .row("AK name:", n.getAkName().isEmpty() ? "-" : HexFormat.of().formatHex(n.getAkName().toByteArray()))
                .row("PCRs:", n.getPcrsCount() == 0 ? "-" : "sha256:" + n.getPcrsList().stream()
                        .map(Integer::toUnsignedString).collect(Collectors.joining(",")))
                .row("golden values:", golden(n))
                .row("created:", TimeText.show(n.getCreateTime()))
                .row("activated:", TimeText.show(n.getActivateTime()))
                .row("last attested:", TimeText.show(n.getLastAttestTime()))
                .row("untrusted reason:", dash(n.getUntrustedReason()))
                .row("revoked:", TimeText.show(n.getRevokeTime()))
                .print(out);
    }

    /** The state's word: ENROLLED, TRUSTED...; "-" when the service sent none. */
    public static String state(NodeState s) {
        return s == NodeState.NODE_STATE_UNSPECIFIED ? "-" : s.name();
    }

    /** "manufacturer model version" from the EK certificate; "-" when it names none. */
    static String tpm(Node n) {
        String t = String.join(" ", n.getTpmManufacturer(), n.getTpmModel(), n.getTpmVersion()).trim()
                .replaceAll("\\s+", " ");
        return t.isEmpty() ? "-" : t;
    }

    /** "16=ab12…, 23=00…" in the order of the PCRs; "- (the event log decides)" when there are none. */
    static String golden(Node n) {
        if (n.getGoldenValuesCount() == 0) {
            return "- (the event log decides)";
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n.getGoldenValuesCount(); i++) {
            ByteString v = n.getGoldenValues(i);
            b.append(i == 0 ? "" : ", ")
                    .append(i < n.getPcrsCount() ? Integer.toUnsignedString(n.getPcrs(i)) : "?")
                    .append('=').append(HexFormat.of().formatHex(v.toByteArray()));
        }
        return b.toString();
    }

    private static String dash(String s) {
        return s.isEmpty() ? "-" : s;
    }
}

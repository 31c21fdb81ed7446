package io.tpmkms.cli.format;

import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.key.v1.KeyVersion;
import java.io.PrintStream;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/** The human-readable views of keys and key versions: tables for lists, aligned fields for one. */
public final class Views {

    private Views() {
    }

    public static void keyTable(Iterable<Key> keys, PrintStream out) {
        Table table = new Table("NAME", "PURPOSE", "ALGORITHM", "PROTECTION", "PRIMARY", "NEXT ROTATION", "LABELS");
        for (Key k : keys) {
            table.row(k.getName(), Vocabulary.PURPOSE.show(k.getPurpose()), Vocabulary.ALGORITHM.show(k.getAlgorithm()),
                    Vocabulary.PROTECTION.show(k.getProtectionLevel()), primary(k.getPrimaryVersion()),
                    TimeText.show(k.getNextRotationTime()), labels(k.getLabelsMap()));
        }
        table.print(out);
    }

    public static void key(Key k, PrintStream out) {
        new Table("name:", k.getName())
                .row("purpose:", Vocabulary.PURPOSE.show(k.getPurpose()))
                .row("algorithm:", Vocabulary.ALGORITHM.show(k.getAlgorithm()))
                .row("protection:", Vocabulary.PROTECTION.show(k.getProtectionLevel()))
                .row("primary version:", primary(k.getPrimaryVersion()))
                .row("rotation period:", k.hasRotationPeriod() ? DurationText.show(k.getRotationPeriod()) : "-")
                .row("next rotation:", TimeText.show(k.getNextRotationTime()))
                .row("labels:", labels(k.getLabelsMap()))
                .row("created:", TimeText.show(k.getCreateTime()))
                .row("updated:", TimeText.show(k.getUpdateTime()))
                .row("etag:", Long.toString(k.getEtag()))
                .print(out);
    }

    public static void versionTable(Iterable<KeyVersion> versions, PrintStream out) {
        Table table = new Table("VERSION", "STATE", "PRIMARY", "CREATED", "DESTROY TIME");
        for (KeyVersion v : versions) {
            table.row(Integer.toUnsignedString(v.getVersion()), Vocabulary.state(v.getState()), v.getPrimary() ? "yes" : "",
                    TimeText.show(v.getCreateTime()), destroyTime(v));
        }
        table.print(out);
    }

    public static void version(KeyVersion v, PrintStream out) {
        new Table("key:", v.getKey())
                .row("version:", Integer.toUnsignedString(v.getVersion()))
                .row("state:", Vocabulary.state(v.getState()))
                .row("primary:", v.getPrimary() ? "yes" : "no")
                .row("algorithm:", Vocabulary.ALGORITHM.show(v.getAlgorithm()))
                .row("protection:", Vocabulary.PROTECTION.show(v.getProtectionLevel()))
                .row("created:", TimeText.show(v.getCreateTime()))
                .row("destroy time:", destroyTime(v))
                .row("compromised:", TimeText.show(v.getCompromiseTime()))
                .print(out);
    }

    /** The scheduled destruction, or when the material was destroyed. */
    private static String destroyTime(KeyVersion v) {
        return v.hasDestroyTime() ? TimeText.show(v.getDestroyTime()) : TimeText.show(v.getDestroyEventTime());
    }

    private static String primary(int version) {
        return version == 0 ? "-" : Integer.toUnsignedString(version);
    }

    static String labels(Map<String, String> labels) {
        if (labels.isEmpty()) {
            return "-";
        }
        return new TreeMap<>(labels).entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(","));
    }
}

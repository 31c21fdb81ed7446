package io.tpmkms.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The lazy registration of {@link TpmkmsCommand#main}: the one named subcommand, or all of them. */
class SubcommandRegistrationTest {

    @Test
    void subcommandNames_areTheNamesTheCommandsDeclare() {
        for (Map.Entry<String, Class<?>> e : TpmkmsCommand.SUBCOMMANDS.entrySet()) {
            assertEquals(e.getKey(), e.getValue().getAnnotation(Command.class).name(), e.getValue().getName());
        }
    }

    @Test
    void subcommandOf_skipsRootOptionsAndTheirValues() {
        assertEquals("keys", TpmkmsCommand.subcommandOf(new String[] {"keys", "list"}));
        assertEquals("keys", TpmkmsCommand.subcommandOf(new String[] {"--json", "keys", "get", "a/b"}));
        assertEquals("encrypt", TpmkmsCommand.subcommandOf(
                new String[] {"--address", "h:1", "--timeout", "5s", "-v", "encrypt", "a/b"}));
        assertEquals("audit", TpmkmsCommand.subcommandOf(new String[] {"--address=h:1", "audit", "verify"}));
        assertNull(TpmkmsCommand.subcommandOf(new String[] {"--help"}));
        assertNull(TpmkmsCommand.subcommandOf(new String[0]));
    }

    @Test
    void secondOf_isTheWordAfterTheGroup_notAfterARootOptionValueSpelledLikeIt() {
        assertEquals("list", TpmkmsCommand.secondOf(new String[] {"keys", "list"}, "keys"));
        assertEquals("verify", TpmkmsCommand.secondOf(new String[] {"--address", "keys", "keys", "verify"}, "keys"));
        assertEquals("verify", TpmkmsCommand.secondOf(
                new String[] {"--address", "audit", "audit", "verify"}, "audit"));
        assertNull(TpmkmsCommand.secondOf(new String[] {"keys", "--help"}, "keys"));
        assertNull(TpmkmsCommand.secondOf(new String[] {"keys"}, "keys"));
        assertNull(TpmkmsCommand.secondOf(new String[] {"encrypt", "keys"}, "keys"));
    }

    @Test
    void commandLineForArgs_registersOnlyTheNamedSubcommand() {
        CommandLine line = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"--json", "keys", "list"});
        assertEquals(List.of("keys"), List.copyOf(line.getSubcommands().keySet()));
    }

    @Test
    void commandLineForArgs_registersAllForHelpNoneOrAnUnknownName() {
        for (String[] args : List.of(new String[] {"--help"}, new String[0], new String[] {"keyz"},
                new String[] {"help", "keys"})) {
            CommandLine line = TpmkmsCommand.commandLine(console(), Platform.system(), args);
            assertEquals(List.copyOf(TpmkmsCommand.SUBCOMMANDS.keySet()), List.copyOf(line.getSubcommands().keySet()));
        }
    }

    @Test
    void groupWithASubcommand_registersOnlyThatOne_elseAllOfTheGroup() {
        CommandLine keys = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"keys", "schedule-destroy", "a/b", "1"}).getSubcommands().get("keys");
        assertEquals(List.of("schedule-destroy"), List.copyOf(keys.getSubcommands().keySet()));
        for (String[] args : List.of(new String[] {"keys"}, new String[] {"keys", "--help"},
                new String[] {"keys", "lst"})) {
            CommandLine all = TpmkmsCommand.commandLine(console(), Platform.system(), args).getSubcommands().get("keys");
            assertEquals(KeysCommand_SUBCOMMAND_NAMES, List.copyOf(all.getSubcommands().keySet()), String.join(" ", args));
        }
    }

    @Test
    void importJobsGroup_registersOnlyTheNamedSubcommand() {
        CommandLine jobs = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"import-jobs", "get", "ns/j"}).getSubcommands().get("import-jobs");
        assertEquals(List.of("get"), List.copyOf(jobs.getSubcommands().keySet()));
        CommandLine keys = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"keys", "import", "ns/k"}).getSubcommands().get("keys");
        assertEquals(List.of("import"), List.copyOf(keys.getSubcommands().keySet()));
    }

    @Test
    void agentGroup_registersTheNamedSubcommand_orAllWhenItsOptionComesFirst() {
        CommandLine only = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"agent", "attest", "n", "--tpm", "unix:/s"}).getSubcommands().get("agent");
        assertEquals(List.of("attest"), List.copyOf(only.getSubcommands().keySet()));
        CommandLine all = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"agent", "--tpm", "unix:/s", "attest", "n"}).getSubcommands().get("agent");
        assertEquals(List.of("enroll", "attest", "release", "measure"), List.copyOf(all.getSubcommands().keySet()));
        CommandLine nodes = TpmkmsCommand.commandLine(console(), Platform.system(),
                new String[] {"nodes", "get", "n"}).getSubcommands().get("nodes");
        assertEquals(List.of("get"), List.copyOf(nodes.getSubcommands().keySet()));
    }

    @Test
    void everyGroupsSubcommands_areRegisteredWhenTheGroupIsHelpedWith() {
        CommandLine all = TpmkmsCommand.commandLine(console(), Platform.system());
        for (var e : TpmkmsCommand.GROUPS.entrySet()) {
            List<String> names = java.util.Arrays.stream(e.getValue().get())
                    .map(c -> c.getAnnotation(Command.class).name()).toList();
            assertEquals(names, List.copyOf(all.getSubcommands().get(e.getKey()).getSubcommands().keySet()), e.getKey());
        }
    }

    private static final List<String> KeysCommand_SUBCOMMAND_NAMES = List.of("create", "list", "get", "update",
            "rotate", "import", "export", "versions", "version", "set-primary", "disable", "enable", "schedule-destroy", "restore", "revoke");

    @Test
    void lazyCommandLine_inheritsGlobalOptionsAfterTheSubcommand() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Console console = Console.of(new ByteArrayInputStream(new byte[0]), out, err);
        String[] args = {"keys", "list", "--timeout", "0s"};
        int code = TpmkmsCommand.commandLine(console, Platform.system(), args).execute(args);
        assertEquals(ExitCodes.USAGE, code, err.toString(StandardCharsets.UTF_8));
        assertEquals(true, err.toString(StandardCharsets.UTF_8).contains("--timeout must be longer than 0s"),
                err.toString(StandardCharsets.UTF_8));
    }

    private static Console console() {
        return Console.of(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream(), new ByteArrayOutputStream());
    }
}

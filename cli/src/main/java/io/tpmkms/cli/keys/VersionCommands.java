package io.tpmkms.cli.keys;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.format.DurationText;
import io.tpmkms.cli.format.Views;
import io.tpmkms.proto.key.v1.DisableKeyVersionRequest;
import io.tpmkms.proto.key.v1.EnableKeyVersionRequest;
import io.tpmkms.proto.key.v1.GetKeyVersionRequest;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.ListKeyVersionsRequest;
import io.tpmkms.proto.key.v1.ListKeyVersionsResponse;
import io.tpmkms.proto.key.v1.RestoreKeyVersionRequest;
import io.tpmkms.proto.key.v1.RevokeKeyVersionRequest;
import io.tpmkms.proto.key.v1.RevokeKeyVersionResponse;
import io.tpmkms.proto.key.v1.ScheduleKeyVersionDestructionRequest;
import io.tpmkms.proto.key.v1.SetPrimaryVersionRequest;
import io.tpmkms.proto.key.v1.SetPrimaryVersionResponse;
import java.time.Duration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code tpmkms keys versions|version|set-primary|disable|enable|schedule-destroy|restore|revoke}. */
final class VersionCommands {

    private VersionCommands() {
    }

    /** KEY and version number, the address of a key version. */
    abstract static class OnVersion extends KmsCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "NAMESPACE/NAME")
        String key;

        @Parameters(index = "1", paramLabel = "VERSION", description = "Version number (1, 2, ...).")
        int version;

        @Override
        protected final int run(Session s) throws Exception {
            if (version <= 0) {
                throw usage("VERSION must be a positive number, got " + version);
            }
            return runOnVersion(s);
        }

        abstract int runOnVersion(Session s) throws Exception;

        /** Prints a response holding one key version: JSON as it is, or the version's view. */
        static int show(Session s, com.google.protobuf.MessageOrBuilder response, KeyVersion version) throws Exception {
            if (s.json()) {
                s.printJson(response);
            } else {
                Views.version(version, s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "versions", description = "List a key's versions (all pages).")
    static final class Versions extends KmsCommand {
        @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME")
        String key;

        @Option(names = "--include-destroyed", description = "Also list destroyed versions (tombstones).")
        boolean includeDestroyed;

        @Override
        protected int run(Session s) throws Exception {
            ListKeyVersionsRequest.Builder request = ListKeyVersionsRequest.newBuilder()
                    .setKey(key).setIncludeDestroyed(includeDestroyed);
            ListKeyVersionsResponse page = s.keys().listKeyVersions(request.build());
            ListKeyVersionsResponse.Builder result = page.toBuilder().clearNextPageToken();
            while (!page.getNextPageToken().isEmpty()) {
                page = s.keys().listKeyVersions(request.setPageToken(page.getNextPageToken()).build());
                result.addAllVersions(page.getVersionsList());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                Views.versionTable(result.getVersionsList(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "version", description = "Show one key version.")
    static final class Version extends OnVersion {
        @Override
        int runOnVersion(Session s) throws Exception {
            var response = s.keys().getKeyVersion(
                    GetKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build());
            return show(s, response, response.getVersion());
        }
    }

    @Command(name = "set-primary", description = "Make an enabled version the primary one.")
    static final class SetPrimary extends OnVersion {
        @Override
        int runOnVersion(Session s) throws Exception {
            SetPrimaryVersionResponse response = s.keys().setPrimaryVersion(
                    SetPrimaryVersionRequest.newBuilder().setKey(key).setVersion(version).build());
            if (s.json()) {
                s.printJson(response);
            } else {
                Views.key(response.getKey(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "disable", description = "Disable a version: it can no longer be used. Not the primary.")
    static final class Disable extends OnVersion {
        @Override
        int runOnVersion(Session s) throws Exception {
            var response = s.keys().disableKeyVersion(
                    DisableKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build());
            return show(s, response, response.getVersion());
        }
    }

    @Command(name = "enable", description = "Enable a disabled version.")
    static final class Enable extends OnVersion {
        @Override
        int runOnVersion(Session s) throws Exception {
            var response = s.keys().enableKeyVersion(
                    EnableKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build());
            return show(s, response, response.getVersion());
        }
    }

    @Command(name = "schedule-destroy", description = "Schedule a version's destruction; 'restore' undoes it until then.")
    static final class ScheduleDestroy extends OnVersion {
        @Option(names = "--delay", paramLabel = "DURATION", converter = DurationText.Converter.class,
                description = "Time until destruction, e.g. 24h, 7d. Default: the service's (24h).")
        Duration delay;

        @Override
        int runOnVersion(Session s) throws Exception {
            var request = ScheduleKeyVersionDestructionRequest.newBuilder().setKey(key).setVersion(version);
            if (delay != null) {
                request.setDelay(DurationText.toProto(delay));
            }
            var response = s.keys().scheduleKeyVersionDestruction(request.build());
            return show(s, response, response.getVersion());
        }
    }

    @Command(name = "restore", description = "Cancel a scheduled destruction.")
    static final class Restore extends OnVersion {
        @Override
        int runOnVersion(Session s) throws Exception {
            var response = s.keys().restoreKeyVersion(
                    RestoreKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build());
            return show(s, response, response.getVersion());
        }
    }

    @Command(name = "revoke", description = {
            "Mark a version compromised: it still decrypts and verifies, but never encrypts, signs or MACs again.",
            "Revoking the primary rotates the key first."})
    static final class Revoke extends OnVersion {
        @Override
        int runOnVersion(Session s) throws Exception {
            RevokeKeyVersionResponse response = s.keys().revokeKeyVersion(
                    RevokeKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build());
            show(s, response, response.getVersion());
            if (!s.json() && response.hasKey()) {
                s.out().println("primary version of " + response.getKey().getName() + " is now "
                        + Integer.toUnsignedString(response.getKey().getPrimaryVersion()));
            }
            return ExitCodes.OK;
        }
    }
}

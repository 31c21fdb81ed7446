package io.tpmkms.cli.policy;

import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import io.tpmkms.cli.connection.KmsConnection;
import io.tpmkms.proto.policy.v1.Resource;
import picocli.CommandLine.Option;

/** A command of the policy service, with the option groups its commands share. */
abstract class PolicyServiceCommand extends KmsCommand {

    /** The service's largest page. */
    static final int MAX_PAGE = 1000;

    @Override
    protected final KmsConnection.Service service() {
        return KmsConnection.Service.POLICY;
    }

    /** The policy text of {@code --file} ({@code -}: stdin); UTF-8, as Cedar sources are. */
    String readPolicy(Session s, String file) throws IOException {
        byte[] bytes = s.read(file);
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw usage("--file " + file + " is not UTF-8 text");
        }
    }

    /** Exactly one of: a key, a namespace, the whole deployment. */
    static final class ResourceOptions {
        @Option(names = "--key", paramLabel = "NAMESPACE/NAME", description = "One key.")
        String key;

        @Option(names = "--namespace", paramLabel = "NAMESPACE", description = "A namespace (every key in it).")
        String namespace;

        @Option(names = "--deployment", description = "The whole deployment (every namespace).")
        boolean deployment;

        /** The resource; {@code invalid} reports a malformed {@code --key}. */
        Resource toProto(java.util.function.Function<String, RuntimeException> invalid) {
            if (key != null) {
                int slash = key.indexOf('/');
                if (slash <= 0 || slash == key.length() - 1 || key.indexOf('/', slash + 1) >= 0) {
                    throw invalid.apply("--key must be NAMESPACE/NAME, got '" + key + "'");
                }
                return Resource.newBuilder().setNamespace(key.substring(0, slash)).setKeyName(key.substring(slash + 1)).build();
            }
            if (namespace != null) {
                if (namespace.isEmpty() || namespace.contains("/")) {
                    throw invalid.apply("--namespace must be a namespace name without '/', got '" + namespace + "'");
                }
                return Resource.newBuilder().setNamespace(namespace).build();
            }
            return Resource.getDefaultInstance();
        }
    }

    /** Page through every page when {@code --all}; shared by the list commands. */
    static final class PageOptions {
        @Option(names = "--page-size", paramLabel = "N", description = "Items per page (service default 50, at most 1000).")
        int pageSize;

        @Option(names = "--page-token", paramLabel = "TOKEN", description = "Continue from a previous page.")
        String pageToken;

        @Option(names = "--all", description = "Follow the page tokens to the end.")
        boolean all;
    }
}

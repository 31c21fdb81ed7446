package io.tpmkms.cli;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.security.MessageDigest;
import java.security.SecureRandom;
import io.tpmkms.cli.connection.KmsConnection;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code tpmkms health}: whether the key, policy and audit services answer SERVING on their gRPC
 * health service, each at its address with the CLI's TLS settings. Needs no login: the services
 * serve health without a token. The first thing to run against a new installation (the Helm chart's
 * test runs it).
 */
@Command(name = "health", sortOptions = false, description = {
        "Check that the services answer: grpc.health.v1 on the key, policy and audit services.",
        "No login needed. Exit 0 when every service checked is SERVING, 3 when one is not reachable,",
        "1 when one answers but is not SERVING.",
        "",
        "  tpmkms health                        all three services",
        "  tpmkms health --service key          the key service only",
        "  tpmkms health --round-trip ops       also encrypt and decrypt with key ops/health-check",
        "  tpmkms health --details              also what each service runs on (TLS engine, crypto providers)",
        "",
        "--round-trip needs a login that may create and use keys in that namespace; the key",
        "(ENCRYPT_DECRYPT, the service's default protection) is created on first use and reused after."})
public final class HealthCommand extends KmsCommand {

    enum Target {
        key(KmsConnection.Service.KEY), policy(KmsConnection.Service.POLICY), audit(KmsConnection.Service.AUDIT);

        final KmsConnection.Service service;

        Target(KmsConnection.Service service) {
            this.service = service;
        }
    }

    @Option(names = "--service", split = ",", paramLabel = "SERVICE",
            description = "key, policy, audit (comma-separated or repeated); default: all three")
    List<Target> services = new ArrayList<>();

    @Option(names = "--round-trip", paramLabel = "NAMESPACE",
            description = "After the health checks, encrypt 32 random bytes with key NAMESPACE/" + ROUND_TRIP_KEY
                    + " (created if missing) and decrypt them; needs a login.")
    String roundTripNamespace;

    static final String ROUND_TRIP_KEY = "health-check";

    @Option(names = "--details",
            description = "Also print what each service says it runs on: its TLS engine, the key service's "
                    + "backends and software cryptography providers (always in --json).")
    boolean details;

    @Override
    protected boolean offline() {
        return true; // opens one connection per service itself, without a token
    }

    @Override
    protected int run(Session s) throws Exception {
        TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
        root.checkTimeout();
        if (roundTripNamespace != null && (roundTripNamespace.isBlank() || roundTripNamespace.contains("/"))) {
            throw usage("--round-trip takes a NAMESPACE (no '/'), got '" + roundTripNamespace + "'");
        }
        Set<Target> wanted = new LinkedHashSet<>(services.isEmpty() ? List.of(Target.values()) : services);
        int worst = ExitCodes.OK;
        List<String[]> rows = new ArrayList<>();
        java.util.Map<String, java.util.SortedMap<String, String>> infos = new java.util.HashMap<>();
        for (Target t : wanted) {
            String address = root.address(t.service);
            String status;
            try (KmsConnection c = KmsConnection.open(new KmsConnection.Settings(t.service, address, root.timeout(),
                    null, root.clientTls(t.service)))) {
                KmsConnection.HealthAnswer answer = c.check("");
                status = answer.status();
                // why a service is not ready: its database, TPM, policy service or audit backlog
                if (answer.notReady() != null) status += " (" + answer.notReady() + ")";
                infos.put(t.service.description(), answer.info());
                if (!status.equals("SERVING")) worst = Math.max(worst, ExitCodes.FAILED);
            } catch (StatusRuntimeException e) {
                status = describe(e);
                worst = Math.max(worst, exitCode(e));
            }
            rows.add(new String[] {t.service.description(), address, status});
        }
        if (roundTripNamespace != null && worst == ExitCodes.OK) {
            String key = roundTripNamespace + "/" + ROUND_TRIP_KEY;
            String status;
            try (KmsConnection c = root.connect(KmsConnection.Service.KEY)) {
                status = roundTrip(c.keys(), key);
                if (!status.startsWith("OK")) worst = Math.max(worst, ExitCodes.FAILED);
            } catch (StatusRuntimeException e) {
                status = describe(e);
                worst = Math.max(worst, exitCode(e));
            }
            rows.add(new String[] {"round trip", key, status});
        }
        if (s.json()) {
            StringBuilder j = new StringBuilder("{\"services\": [");
            for (int i = 0; i < rows.size(); i++) {
                String[] r = rows.get(i);
                j.append(i == 0 ? "" : ", ").append("{\"service\": \"").append(r[0]).append("\", \"address\": \"")
                        .append(esc(r[1])).append("\", \"status\": \"").append(esc(r[2])).append('"');
                var info = infos.get(r[0]);
                if (info != null) {
                    j.append(", \"info\": {");
                    int k = 0;
                    for (var e : info.entrySet()) {
                        j.append(k++ == 0 ? "" : ", ").append('"').append(esc(e.getKey())).append("\": \"")
                                .append(esc(e.getValue())).append('"');
                    }
                    j.append('}');
                }
                j.append('}');
            }
            s.out().println(j.append("]}"));
        } else {
            for (String[] r : rows) {
                s.out().printf("%-15s %-40s %s%n", r[0], r[1], r[2]);
                var info = infos.get(r[0]);
                if (details && info != null) info.forEach((k, v) -> s.out().printf("%-15s %s: %s%n", "", k, v));
            }
        }
        return worst;
    }

    private static String describe(StatusRuntimeException e) {
        return e.getStatus().getCode() + (e.getStatus().getDescription() == null ? "" : ": " + e.getStatus().getDescription());
    }

    /** The exit code of a failed check: the status's, never OK. */
    private static int exitCode(StatusRuntimeException e) {
        int code = ExitCodes.forStatus(e.getStatus().getCode());
        return code == ExitCodes.OK ? ExitCodes.FAILED : code;
    }

    /** Get-or-create the key, then encrypt and decrypt random bytes; "OK ..." or what went wrong. */
    static String roundTrip(KeyServiceGrpc.KeyServiceBlockingStub keys, String key) {
        int slash = key.indexOf('/');
        long start = System.nanoTime();
        try {
            keys.getKey(GetKeyRequest.newBuilder().setKey(key).build());
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() != io.grpc.Status.Code.NOT_FOUND) throw e;
            try {
                keys.createKey(CreateKeyRequest.newBuilder()
                        .setNamespace(key.substring(0, slash))
                        .setName(key.substring(slash + 1))
                        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT)
                        .putLabels("created-by", "tpmkms-health")
                        .build());
            } catch (StatusRuntimeException raced) {
                if (raced.getStatus().getCode() != io.grpc.Status.Code.ALREADY_EXISTS) throw raced;
            }
        }
        byte[] plaintext = new byte[32];
        new SecureRandom().nextBytes(plaintext);
        ByteString aad = ByteString.copyFromUtf8("tpmkms health");
        ByteString ciphertext = keys.encrypt(EncryptRequest.newBuilder().setKey(key)
                .setPlaintext(ByteString.copyFrom(plaintext)).setAdditionalAuthenticatedData(aad).build())
                .getCiphertext();
        byte[] back = keys.decrypt(DecryptRequest.newBuilder().setKey(key).setCiphertext(ciphertext)
                .setAdditionalAuthenticatedData(aad).build()).getPlaintext().toByteArray();
        if (!MessageDigest.isEqual(plaintext, back)) {
            return "FAILED: decrypt did not return the plaintext";
        }
        return String.format("OK (encrypt + decrypt, %d ms)", (System.nanoTime() - start) / 1_000_000);
    }

    private static String esc(String v) {
        return v.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}

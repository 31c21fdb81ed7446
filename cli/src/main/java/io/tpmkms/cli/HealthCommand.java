package io.tpmkms.cli;

import io.grpc.StatusRuntimeException;
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
        "  tpmkms health --service key          the key service only"})
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

    @Override
    protected boolean offline() {
        return true; // opens one connection per service itself, without a token
    }

    @Override
    protected int run(Session s) throws Exception {
        TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
        root.checkTimeout();
        Set<Target> wanted = new LinkedHashSet<>(services.isEmpty() ? List.of(Target.values()) : services);
        int worst = ExitCodes.OK;
        List<String[]> rows = new ArrayList<>();
        for (Target t : wanted) {
            String address = root.address(t.service);
            String status;
            try (KmsConnection c = KmsConnection.open(new KmsConnection.Settings(t.service, address, root.timeout(),
                    null, root.clientTls(t.service)))) {
                status = c.health("");
                if (!status.equals("SERVING")) worst = Math.max(worst, ExitCodes.FAILED);
            } catch (StatusRuntimeException e) {
                status = e.getStatus().getCode() + (e.getStatus().getDescription() == null ? ""
                        : ": " + e.getStatus().getDescription());
                int code = ExitCodes.forStatus(e.getStatus().getCode());
                worst = Math.max(worst, code == ExitCodes.OK ? ExitCodes.FAILED : code);
            }
            rows.add(new String[] {t.service.description(), address, status});
        }
        if (s.json()) {
            StringBuilder j = new StringBuilder("{\"services\": [");
            for (int i = 0; i < rows.size(); i++) {
                String[] r = rows.get(i);
                j.append(i == 0 ? "" : ", ").append("{\"service\": \"").append(r[0]).append("\", \"address\": \"")
                        .append(esc(r[1])).append("\", \"status\": \"").append(esc(r[2])).append("\"}");
            }
            s.out().println(j.append("]}"));
        } else {
            for (String[] r : rows) s.out().printf("%-15s %-40s %s%n", r[0], r[1], r[2]);
        }
        return worst;
    }

    private static String esc(String v) {
        return v.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}

package io.tpmkms.cli.auth;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.connection.KmsConnection;
import io.tpmkms.cli.policy.PolicyViews;
import io.tpmkms.proto.policy.v1.WhoAmIRequest;
import io.tpmkms.proto.policy.v1.WhoAmIResponse;
import picocli.CommandLine.Command;

/**
 * {@code tpmkms whoami}: the caller as the policy service sees it from the token — which is what
 * authorization decisions use, unlike the claims the CLI could read from the token itself.
 */
@Command(name = "whoami", description = {
        "Show who the services take you for: subject, username, client, roles and groups of your token.",
        "Asks the policy service (--policy-address)."})
public final class WhoAmICommand extends KmsCommand {

    @Override
    protected KmsConnection.Service service() {
        return KmsConnection.Service.POLICY;
    }

    @Override
    protected int run(Session s) throws Exception {
        WhoAmIResponse r = s.policy().whoAmI(WhoAmIRequest.getDefaultInstance());
        if (s.json()) {
            s.printJson(r);
        } else {
            PolicyViews.principal(r.getPrincipal(), s.out());
        }
        return ExitCodes.OK;
    }
}

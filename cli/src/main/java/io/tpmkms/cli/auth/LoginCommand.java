package io.tpmkms.cli.auth;

import com.google.gson.JsonObject;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.TpmkmsCommand;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms login}: gets a token from Keycloak and caches it for every later command. Three
 * ways, chosen by the options: a user's password (resource owner password grant), a browser on
 * any device (device authorization grant, for machines without a browser or when the password must
 * not be typed into the CLI), or a client's secret (client credentials grant, for automation).
 *
 * <p>The password is read without echo from the terminal, or from stdin with
 * {@code --password-stdin}; never from an option, where it would land in the shell history and the
 * process list. Tokens are never printed.
 */
@Command(name = "login", sortOptions = false, description = {
        "Log in at the OpenID provider (Keycloak) and cache the token for later commands.",
        "  tpmkms login --username alice                   password, prompted without echo",
        "  tpmkms login --username alice --password-stdin  password from stdin",
        "  tpmkms login --device                           open a URL anywhere and enter a code",
        "  tpmkms login --client-id svc --client-secret-file svc.secret   a client's service account",
        "Cache: ${TPMKMS_CONFIG_DIR:-~/.config/tpmkms}/credentials.json (mode 0600); the token is renewed "
                + "automatically."})
public final class LoginCommand implements Callable<Integer> {

    /** The realm of a local development setup (deploy/keycloak). */
    public static final String DEFAULT_ISSUER = "http://127.0.0.1:8180/realms/tpmkms";

    /** The environment variable naming the issuer when {@code --issuer} is not given. */
    public static final String ISSUER_ENV = "TPMKMS_OIDC_ISSUER";

    // No picocli ${env:} default: the environment comes from the Platform, like every other variable.
    @Option(names = "--issuer", paramLabel = "URL",
            description = "The realm's issuer URL (env " + ISSUER_ENV + ", default " + DEFAULT_ISSUER + ").")
    String issuer;

    @Option(names = "--client-id", paramLabel = "ID", defaultValue = "tpmkms-cli",
            description = "OAuth client (default ${DEFAULT-VALUE}, a public client).")
    String clientId;

    @Option(names = "--username", paramLabel = "USER", description = "Log in as this user with their password.")
    String username;

    @Option(names = "--password-stdin", description = "Read the password from stdin (first line) instead of the terminal.")
    boolean passwordStdin;

    @Option(names = "--device", description = "Device authorization grant: prints a URL and a code to enter there, "
            + "then waits until you have logged in.")
    boolean device;

    @Option(names = "--client-secret-file", paramLabel = "FILE",
            description = "Client credentials grant with the secret in FILE (first line); with env "
                    + TokenSource.CLIENT_SECRET_ENV + " set instead, give --client-id and no --username or --device.")
    Path clientSecretFile;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
        try {
            return login(root);
        } finally {
            root.console().flush();
        }
    }

    private int login(TpmkmsCommand root) throws Exception {
        root.checkTimeout();
        if (issuer == null) {
            String env = root.platform().getenv(ISSUER_ENV);
            issuer = env != null && !env.isBlank() ? env.strip() : DEFAULT_ISSUER;
        }
        String envSecret = root.platform().getenv(TokenSource.CLIENT_SECRET_ENV);
        boolean clientCredentials = clientSecretFile != null
                || (username == null && !device && envSecret != null && !envSecret.isBlank());
        int modes = (username != null ? 1 : 0) + (device ? 1 : 0) + (clientSecretFile != null ? 1 : 0);
        if (modes > 1) {
            throw usage("give one of --username, --device and --client-secret-file");
        }
        if (modes == 0 && !clientCredentials) {
            throw usage("say how to log in: --username USER (password), --device (device code), or "
                    + "--client-secret-file FILE / env " + TokenSource.CLIENT_SECRET_ENV + " (client credentials)");
        }
        if (passwordStdin && username == null) {
            throw usage("--password-stdin needs --username");
        }
        PrintStream err = root.console().err();
        warnIfPlaintext(err);

        OidcClient oidc = OidcClient.discover(issuer, root.timeout());
        Instant now;
        OidcClient.Tokens tokens;
        String grant;
        String secretFile = null;
        if (clientCredentials) {
            String secret;
            if (clientSecretFile != null) {
                secretFile = clientSecretFile.toAbsolutePath().toString();
                secret = TokenSource.clientSecret(root.platform(), secretFile);
                if (secret == null || secret.isEmpty()) {
                    throw usage("cannot read a client secret from " + clientSecretFile);
                }
            } else {
                secret = envSecret.strip();
            }
            now = root.platform().now();
            tokens = oidc.clientCredentials(clientId, secret);
            grant = Credentials.CLIENT_CREDENTIALS;
        } else if (device) {
            OidcClient.DeviceAuthorization d = oidc.startDevice(clientId, null);
            err.println("To log in, open " + d.verificationUri() + " and enter the code " + d.userCode());
            if (d.verificationUriComplete() != null) {
                err.println("  (or open " + d.verificationUriComplete() + ")");
            }
            err.println("Waiting for the login (the code expires in " + d.expiresIn().toSeconds() + "s) ...");
            tokens = oidc.pollDevice(clientId, null, d, root.platform(), t -> { });
            now = root.platform().now();
            grant = Credentials.DEVICE;
        } else {
            char[] password = readPassword(root);
            try {
                now = root.platform().now();
                tokens = oidc.password(clientId, null, username, password);
            } finally {
                Arrays.fill(password, '\0');
            }
            grant = Credentials.PASSWORD;
        }
        OidcClient.Endpoints e = oidc.endpoints();
        Credentials credentials = new Credentials(e.issuer(), clientId, grant, e.tokenEndpoint(),
                e.revocationEndpoint(), tokens.accessToken(), now.plus(tokens.expiresIn()), tokens.refreshToken(),
                tokens.refreshExpiresIn() == null ? null : now.plus(tokens.refreshExpiresIn()), secretFile);
        CredentialStore store = root.credentialStore();
        store.write(credentials);
        report(root, store, credentials);
        return ExitCodes.OK;
    }

    private char[] readPassword(TpmkmsCommand root) throws IOException {
        if (passwordStdin) {
            String text = new String(root.console().stdin().readAllBytes(), StandardCharsets.UTF_8);
            int eol = text.indexOf('\n');
            String line = eol < 0 ? text : text.substring(0, eol);
            if (line.endsWith("\r")) {
                line = line.substring(0, line.length() - 1);
            }
            if (line.isEmpty()) {
                throw usage("no password on stdin");
            }
            return line.toCharArray();
        }
        char[] password = root.platform().readPassword("Password for " + username + " at " + issuer + ": ");
        if (password == null) {
            throw usage("no terminal to read the password from; use --password-stdin");
        }
        return password;
    }

    private void report(TpmkmsCommand root, CredentialStore store, Credentials c) {
        JsonObject claims = Jwt.claims(c.accessToken());
        String subject = Jwt.string(claims, "sub");
        String user = Jwt.string(claims, "preferred_username");
        if (root.json()) {
            JsonObject o = new JsonObject();
            o.addProperty("issuer", c.issuer());
            o.addProperty("clientId", c.clientId());
            o.addProperty("grant", c.grant());
            o.addProperty("subject", subject);
            o.addProperty("username", user);
            o.addProperty("expiresAt", c.expiresAt().toString());
            o.addProperty("refreshable", c.refreshToken() != null || Credentials.CLIENT_CREDENTIALS.equals(c.grant()));
            o.addProperty("credentialsFile", store.file().toString());
            root.console().out().println(o);
            return;
        }
        String who = user != null ? user : subject != null ? subject : "client " + c.clientId();
        root.console().out().println("logged in to " + c.issuer() + " as " + who + " (client " + c.clientId() + ")");
        root.console().out().println("token valid until " + c.expiresAt() + ", renewed automatically; cached in "
                + store.file());
    }

    /** Passwords and tokens in plaintext are tolerable on loopback only: say so for anything else. */
    private void warnIfPlaintext(PrintStream err) {
        URI uri;
        try {
            uri = URI.create(issuer);
        } catch (IllegalArgumentException e) {
            return; // discovery reports it
        }
        if (!"http".equals(uri.getScheme()) || uri.getHost() == null) {
            return;
        }
        try {
            if (InetAddress.getByName(uri.getHost()).isLoopbackAddress()) {
                return;
            }
        } catch (UnknownHostException e) {
            // not loopback as far as we know
        }
        err.println("warning: " + issuer + " is plain HTTP: credentials and tokens cross the network unencrypted");
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }
}

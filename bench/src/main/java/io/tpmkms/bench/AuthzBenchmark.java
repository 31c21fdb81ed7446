package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.policy.v1.AuthorizeRequest;
import io.tpmkms.proto.policy.v1.Decision;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.proto.policy.v1.Resource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The authorization suite ({@code --authz}), in one run on one machine: a real Keycloak with the
 * repo's realm, the packaged policy service, and three packaged key services (auditing off in all
 * three, so only authentication and authorization differ):
 *
 * <ul>
 *   <li><b>off</b>: {@code tpmkms.auth.mode=none} (no token, no decision);
 *   <li><b>on</b>: every call carries a bearer token, checked by quarkus-oidc (verified tokens
 *       remembered), and is authorized by the policy service (decisions remembered 5 s, the default);
 *   <li><b>on, no decision cache</b>: the same with {@code tpmkms.authz.cache-ttl=0s}: every call asks
 *       the policy service (the worst case, shown for scale).
 * </ul>
 *
 * Encrypt of 1 KiB is measured on each, alternating, twice; then {@code Authorize} latency is
 * measured directly against the policy service (one caller, then eight). Prints the tables and
 * rewrites the {@code authz} section of {@code docs/benchmarks.md}.
 */
final class AuthzBenchmark {
    static final String SECTION = "authz";
    static final String USAGE = "usage: java -jar bench/target/tpmkms-bench.jar --authz [--threads N] [--no-report]";
    private static final ServiceProcess.Kind POLICY_SERVICE = new ServiceProcess.Kind("policy service",
            "TPMKMS_POLICY_GRPC_PORT", "TPMKMS_POLICY_HTTP_PORT",
            "./mvnw -B -q -pl policy-service -am package -DskipTests");
    private static final String REALM = "tpmkms";

    private AuthzBenchmark() {
    }

    static int main(String[] args) {
        int threads = 32;
        boolean report = true;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--authz" -> { }
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--no-report" -> report = false;
                default -> {
                    System.err.println(USAGE);
                    return 2;
                }
            }
        }
        try {
            return run(threads, report);
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            return 1;
        }
    }

    private static int run(int threads, boolean report) throws Exception {
        Duration warmup = Duration.ofSeconds(3);
        Duration window = Duration.ofSeconds(8);
        Duration startTimeout = Duration.ofSeconds(120);
        Path root = Path.of("").toAbsolutePath();
        Path work = Files.createTempDirectory("tpmkms-bench-authz-");
        try (Keycloak kc = Keycloak.start(work.resolve("keycloak"))) {
            kc.importRealm(root.resolve("deploy/keycloak/tpmkms-realm.json"));
            // A client whose tokens outlive the run, for the benchmark's caller.
            kc.createClient(REALM, Map.of("clientId", "tpmkms-bench", "publicClient", true,
                    "directAccessGrantsEnabled", true, "attributes", Map.of("access.token.lifespan", "3600"),
                    "protocolMappers", List.of(audience("tpmkms-key-service"), audience("tpmkms-policy-service"))));
            kc.createUser(REALM, "bench", "bench-pw", List.of("tpmkms-admin", "tpmkms-user"), List.of());
            String userToken = kc.passwordGrant(REALM, "tpmkms-bench", null, "bench", "bench-pw").accessToken();
            String serviceToken = kc.clientCredentials(REALM, "tpmkms-key-service",
                    "dev-only-key-service-secret").accessToken();

            Map<String, String> common = Map.of("TPMKMS_OIDC_URL", kc.issuer(REALM), "TPMKMS_AUDIT_ENABLED", "false",
                    "TPMKMS_AUTH_MODE", "oidc");
            Path policyJar = Path.of("policy-service/target/quarkus-app/quarkus-run.jar");
            Path keyJar = Path.of("key-service/target/quarkus-app/quarkus-run.jar");
            try (ServiceProcess policy = ServiceProcess.start(POLICY_SERVICE, policyJar, startTimeout, common)) {
                Map<String, String> onEnv = new LinkedHashMap<>(common);
                onEnv.put("TPMKMS_POLICY_SERVICE", policy.target());
                Map<String, String> noCacheEnv = new LinkedHashMap<>(onEnv);
                noCacheEnv.put("TPMKMS_AUTHZ_CACHE_TTL", "0s");
                Map<String, String> offEnv = new LinkedHashMap<>(common);
                offEnv.put("TPMKMS_AUTH_MODE", "none");
                try (ServiceProcess off = ServiceProcess.start(ServiceProcess.KEY_SERVICE, keyJar, startTimeout, offEnv);
                     ServiceProcess on = ServiceProcess.start(ServiceProcess.KEY_SERVICE, keyJar, startTimeout, onEnv);
                     ServiceProcess noCache = ServiceProcess.start(ServiceProcess.KEY_SERVICE, keyJar, startTimeout,
                             noCacheEnv)) {
                    LoadRunner runner = new LoadRunner(warmup, window);
                    EncryptLoad offLoad = new EncryptLoad(off.target(), null, "authorization off");
                    EncryptLoad onLoad = new EncryptLoad(on.target(), userToken, "authorization on (default: decisions cached 5 s)");
                    EncryptLoad noCacheLoad = new EncryptLoad(noCache.target(), userToken,
                            "authorization on, no decision cache (every call asks the policy service)");
                    try (offLoad; onLoad; noCacheLoad) {
                        for (EncryptLoad l : List.of(offLoad, onLoad, noCacheLoad)) l.prepare();
                        List<Measurement> offRuns = new ArrayList<>();
                        List<Measurement> onRuns = new ArrayList<>();
                        List<Measurement> noCacheRuns = new ArrayList<>();
                        // Round 0 warms up all three JVMs (and is not reported); rounds 1 and 2 count.
                        for (int round = 0; round < 3; round++) {
                            Measurement a = measure(runner, offLoad, threads);
                            Measurement b = measure(runner, onLoad, threads);
                            Measurement c = measure(runner, noCacheLoad, threads);
                            if (round == 0) continue;
                            offRuns.add(a);
                            onRuns.add(b);
                            noCacheRuns.add(c);
                        }
                        Measurement auth1;
                        Measurement auth8;
                        try (AuthorizeLoad one = new AuthorizeLoad(policy.target(), serviceToken);
                             AuthorizeLoad eight = new AuthorizeLoad(policy.target(), serviceToken)) {
                            auth1 = runner.run(one, 1);
                            auth8 = runner.run(eight, 8);
                        }
                        List<Measurement> all = new ArrayList<>(offRuns);
                        all.addAll(onRuns);
                        all.addAll(noCacheRuns);
                        all.add(auth1);
                        all.add(auth8);
                        for (Measurement m : all) {
                            if (m.errors() > 0) {
                                System.err.println(m.workload() + " had " + m.errors() + " errors: " + m.firstError());
                                return 1;
                            }
                        }
                        String text = format(threads, offRuns, onRuns, noCacheRuns, auth1, auth8);
                        System.out.println(text);
                        if (report) {
                            ReportDocument.write(Path.of("docs/benchmarks.md"), SECTION, text);
                            System.out.println("wrote section " + SECTION + " of docs/benchmarks.md");
                        }
                        return 0;
                    }
                }
            }
        }
    }

    private static Map<String, Object> audience(String aud) {
        return Map.of("name", "aud-" + aud, "protocol", "openid-connect", "protocolMapper", "oidc-audience-mapper",
                "config", Map.of("included.custom.audience", aud, "access.token.claim", "true"));
    }

    private static Measurement measure(LoadRunner runner, EncryptLoad load, int threads) throws Exception {
        Measurement m = runner.run(load, threads);
        System.out.printf(Locale.ROOT, "%-75s %8.0f ops/s  p50 %7.0f us  p99 %7.0f us%n", load.description(),
                m.opsPerSecond(), m.p50Micros(), m.p99Micros());
        return m;
    }

    /** Encrypt 1 KiB on a software key, with a bearer token or without; decrypts its last output. */
    private static final class EncryptLoad implements Workload, AutoCloseable {
        private final ManagedChannel[] channels = new ManagedChannel[4];
        private final String label;

        EncryptLoad(String target, String token, String label) {
            this.label = label;
            for (int i = 0; i < channels.length; i++) {
                var b = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).userAgent("tpmkms-bench");
                if (token != null) b.intercept(bearer(token));
                channels[i] = b.build();
            }
        }

        void prepare() {
            KeyServiceGrpc.newBlockingStub(channels[0]).createKey(CreateKeyRequest.newBuilder()
                    .setNamespace("bench").setName("aes").setPurpose(KeyPurpose.ENCRYPT_DECRYPT)
                    .setAlgorithm(Algorithm.AES_256_GCM).setProtectionLevel(ProtectionLevel.SOFTWARE).build());
        }

        @Override
        public String id() {
            return "grpc-encrypt";
        }

        @Override
        public String description() {
            return "Encrypt 1 KiB, " + label;
        }

        @Override
        public Operation newOperation(int thread, int threads) {
            KeyServiceGrpc.KeyServiceBlockingStub stub = KeyServiceGrpc.newBlockingStub(channels[thread % channels.length]);
            byte[] plaintext = new byte[1024];
            new SecureRandom().nextBytes(plaintext);
            EncryptRequest request = EncryptRequest.newBuilder().setKey("bench/aes")
                    .setPlaintext(ByteString.copyFrom(plaintext)).build();
            return new Operation() {
                ByteString last;

                @Override
                public void run() {
                    last = stub.withDeadlineAfter(30, TimeUnit.SECONDS).encrypt(request).getCiphertext();
                }

                @Override
                public void verifyLast() {
                    if (last == null) return;
                    ByteString back = stub.decrypt(DecryptRequest.newBuilder().setKey("bench/aes").setCiphertext(last)
                            .build()).getPlaintext();
                    if (!back.equals(request.getPlaintext())) {
                        throw new IllegalStateException("a benchmark ciphertext does not decrypt to its plaintext");
                    }
                }
            };
        }

        @Override
        public void close() {
            for (ManagedChannel c : channels) c.shutdownNow();
        }
    }

    /** Authorize calls as the key service makes them (its service token), for a user-role principal. */
    private static final class AuthorizeLoad implements Workload, AutoCloseable {
        private final List<ManagedChannel> channels = new ArrayList<>();
        private final String target;
        private final String serviceToken;

        AuthorizeLoad(String target, String serviceToken) {
            this.target = target;
            this.serviceToken = serviceToken;
        }

        @Override
        public String id() {
            return "authorize";
        }

        @Override
        public String description() {
            return "policy service Authorize (gRPC, the key service's token)";
        }

        @Override
        public Operation newOperation(int thread, int threads) {
            ManagedChannel channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
                    .intercept(bearer(serviceToken)).build();
            channels.add(channel);
            var stub = PolicyServiceGrpc.newBlockingStub(channel);
            AuthorizeRequest request = AuthorizeRequest.newBuilder()
                    .setPrincipal(io.tpmkms.proto.policy.v1.Principal.newBuilder().setSubject("bench-subject")
                            .setUsername("bench").setClientId("tpmkms-cli").addRealmRoles("tpmkms-user")
                            .setIssuer("bench"))
                    .setAction("Encrypt")
                    .setResource(Resource.newBuilder().setNamespace("bench").setKeyName("aes"))
                    .build();
            return () -> {
                Decision d = stub.withDeadlineAfter(30, TimeUnit.SECONDS).authorize(request).getDecision();
                if (d != Decision.ALLOW) throw new IllegalStateException("Authorize answered " + d);
            };
        }

        @Override
        public void close() {
            channels.forEach(ManagedChannel::shutdownNow);
        }
    }

    private static ClientInterceptor bearer(String token) {
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
        return MetadataUtils.newAttachHeadersInterceptor(m);
    }

    private static double mean(List<Measurement> ms) {
        return ms.stream().mapToDouble(Measurement::opsPerSecond).average().orElse(0);
    }

    private static String format(int threads, List<Measurement> off, List<Measurement> on, List<Measurement> noCache,
            Measurement auth1, Measurement auth8) {
        StringBuilder b = new StringBuilder();
        b.append("## Authorization: what identity and policy checks cost Encrypt (`--authz`), ").append(LocalDate.now())
                .append("\n\n");
        b.append(MachineInfo.current().describe()).append("\n\n");
        b.append("Encrypt of 1 KiB on a SOFTWARE key, ").append(threads)
                .append(" blocking clients, auditing off in all three key services (same run, alternating, ")
                .append("a warm-up round, then two rounds of 8 s after 3 s warm-up each):\n\n");
        b.append("| Key service | round 1 ops/s | round 2 ops/s | mean ops/s | p50 / p99 µs (round 2) | cost vs off |\n");
        b.append("|---|---|---|---|---|---|\n");
        double offMean = mean(off);
        row(b, "authorization off (`tpmkms.auth.mode=none`)", off, offMean);
        row(b, "**on** (token checked, decisions cached 5 s — the default)", on, offMean);
        row(b, "on, no decision cache (every call asks the policy service)", noCache, offMean);
        double cost = 100 * (1 - mean(on) / offMean);
        b.append(String.format(Locale.ROOT, "%nAuthorization costs **%.0f %%** of Encrypt throughput with the default "
                + "settings (target: at most 20 %%): %s.%n%n", cost, cost <= 20 ? "met" : "missed"));
        b.append("`Authorize` over gRPC (plaintext loopback, the key service's client-credentials token, a principal "
                + "allowed by its realm-role binding):\n\n");
        b.append("| Callers | ops/s | p50 µs | p99 µs |\n|---|---|---|---|\n");
        for (Measurement m : List.of(auth1, auth8)) {
            b.append(String.format(Locale.ROOT, "| %d | %.0f | %.0f | %.0f |%n", m.threads(), m.opsPerSecond(),
                    m.p50Micros(), m.p99Micros()));
        }
        return b.toString();
    }

    private static void row(StringBuilder b, String name, List<Measurement> ms, double offMean) {
        Measurement last = ms.get(ms.size() - 1);
        b.append(String.format(Locale.ROOT, "| %s | %.0f | %.0f | %.0f | %.0f / %.0f | %s |%n", name,
                ms.get(0).opsPerSecond(), last.opsPerSecond(), mean(ms), last.p50Micros(), last.p99Micros(),
                offMean == 0 ? "" : String.format(Locale.ROOT, "%.0f %%", 100 * (1 - mean(ms) / offMean))));
    }
}

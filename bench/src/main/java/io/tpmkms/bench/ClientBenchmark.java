package io.tpmkms.bench;

import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.tpmkms.client.RetryPolicy;
import io.tpmkms.client.TokenSource;
import io.tpmkms.client.TpmkmsClient;
import io.tpmkms.devtools.ServiceProcess;
import io.tpmkms.proto.key.v1.BatchEncryptRequest;
import io.tpmkms.proto.key.v1.BatchEncryptResponse;
import io.tpmkms.proto.key.v1.DecryptRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.EncryptResponse;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.io.PrintStream;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What the callers' side gets (issue 21): items/s of Encrypt one call per item against BatchEncrypt
 * of 1, 16 and 128 items at the same concurrency; what the Java client library (tokens, deadline,
 * retry loop, error mapping) adds over a raw generated stub; and, when the Kubernetes KMS v2 plugin
 * is given, Encrypt through it against a direct call. One key service of this checkout (software
 * backend, auditing on, authentication off), rounds of rotating order in one run, the serving
 * process's CPU per item.
 */
final class ClientBenchmark {
    static final String SECTION = "client";
    static final String USAGE = "usage: java -jar tpmkms-bench.jar --client [--rounds 3] [--warmup 2s] [--measure 5s]"
            + " [--threads 16] [--channels 4] [--service-warmup 15s] [--service-jar PATH]"
            + " [--report docs/benchmarks.md | --no-report]";

    static final String RAW = "Encrypt, one call per item (raw stub)";
    static final String LIBRARY = "Encrypt, one call per item (client library)";
    static final String BATCH_1 = "BatchEncrypt, 1 item per call";
    static final String BATCH_16 = "BatchEncrypt, 16 items per call";
    static final String BATCH_128 = "BatchEncrypt, 128 items per call";
    static final List<String> ROWS = List.of(RAW, LIBRARY, BATCH_1, BATCH_16, BATCH_128);
    static final String KMS_DIRECT = "Encrypt 32 B, client library, direct";
    static final String KMS_PLUGIN = "KMS v2 Encrypt 32 B through the plugin (UNIX socket)";
    static final List<String> KMS_ROWS = List.of(KMS_DIRECT, KMS_PLUGIN);
    static final Map<String, Integer> ITEMS = Map.of(RAW, 1, LIBRARY, 1, BATCH_1, 1, BATCH_16, 16, BATCH_128, 128,
            KMS_DIRECT, 1, KMS_PLUGIN, 1);

    /** The journal backlog this suite's service may keep (16 GiB): nothing forwards its records. */
    static final String JOURNAL_BACKLOG = Long.toString(16L << 30);

    record Options(Path serviceJar, int rounds, Duration warmup, Duration window, int threads, int channels,
                   Path report, Duration startTimeout, Duration serviceWarmup) {
        static Options parse(String... args) {
            Path jar = Path.of("key-service/target/quarkus-app/quarkus-run.jar");
            int rounds = 3;
            Duration warmup = Duration.ofSeconds(2);
            Duration window = Duration.ofSeconds(5);
            int threads = 16;
            int channels = 4;
            Path report = Path.of("docs/benchmarks.md");
            Duration serviceWarmup = Duration.ofSeconds(15);
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--client" -> { }
                    case "--service-jar" -> jar = Path.of(v(args, ++i, a));
                    case "--rounds" -> rounds = n(v(args, ++i, a));
                    case "--warmup" -> warmup = Benchmark.Options.duration(v(args, ++i, a));
                    case "--measure" -> window = Benchmark.Options.duration(v(args, ++i, a));
                    case "--threads" -> threads = n(v(args, ++i, a));
                    case "--channels" -> channels = n(v(args, ++i, a));
                    case "--service-warmup" -> serviceWarmup = Benchmark.Options.duration(v(args, ++i, a));
                    case "--report" -> report = Path.of(v(args, ++i, a));
                    case "--no-report" -> report = null;
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            return new Options(jar, rounds, warmup, window, threads, channels, report, Duration.ofSeconds(120),
                    serviceWarmup);
        }

        private static String v(String[] args, int i, String option) {
            if (i >= args.length) throw new IllegalArgumentException(option + " needs a value");
            return args[i];
        }

        private static int n(String s) {
            int n = Integer.parseInt(s.trim());
            if (n <= 0) throw new IllegalArgumentException("must be positive: " + s);
            return n;
        }
    }

    record Result(MachineInfo machine, Options options, Map<String, List<Measurement>> rounds,
                  Map<String, List<Double>> cpuMicrosPerItem, Map<Integer, Map<String, List<Measurement>>> kms,
                  String loadStart, String loadEnd, Instant at) {
        Measurement kmsMedian(int threads, String row) {
            List<Measurement> ms = new ArrayList<>(kms.get(threads).get(row));
            ms.sort((x, y) -> Double.compare(x.opsPerSecond(), y.opsPerSecond()));
            return ms.get(ms.size() / 2);
        }

        double itemsPerSecond(Measurement m, String row) {
            return m.opsPerSecond() * ITEMS.get(row);
        }

        Measurement median(String row) {
            List<Measurement> ms = new ArrayList<>(rounds.get(row));
            ms.sort((x, y) -> Double.compare(x.opsPerSecond(), y.opsPerSecond()));
            return ms.get(ms.size() / 2);
        }

        double medianItemsPerSecond(String row) {
            return itemsPerSecond(median(row), row);
        }

        double medianCpu(String row) {
            double[] v = cpuMicrosPerItem.getOrDefault(row, List.of()).stream().mapToDouble(Double::doubleValue).sorted()
                    .toArray();
            return v.length == 0 ? Double.NaN : v[v.length / 2];
        }

        long errors() {
            return rounds.values().stream().flatMap(List::stream).mapToLong(Measurement::errors).sum()
                    + kms.values().stream().flatMap(m -> m.values().stream()).flatMap(List::stream)
                    .mapToLong(Measurement::errors).sum();
        }

        String section() {
            StringBuilder b = new StringBuilder();
            b.append("## Callers: batches, the client library (`--client`), ").append(at.toString(), 0, 10)
                    .append("\n\n");
            b.append("Run ").append(at).append(" on ").append(machine.describe()).append("; 1-minute load average ")
                    .append(loadStart).append(" at the start, ").append(loadEnd).append(" at the end.\n\n");
            b.append(String.format(Locale.ROOT, "Encrypt AES-256-GCM, 1 KiB + 16 B AAD per item, %d client threads "
                    + "over %d channels, %s warm-up and %s measured per row; %d rounds, the order rotated each round "
                    + "(the median round counts), after %s of unmeasured load. One key service of this checkout "
                    + "(software backend, auditing on: one journal record per item, authentication off, plaintext "
                    + "gRPC). Raw stub: the generated blocking stub. Client library: `TpmkmsClient.encryptResponse` "
                    + "(no token source, the default retry policy and deadline). Batches: `BatchEncrypt` through the "
                    + "raw stub, every item on the same key. No audit service takes the records here, so the "
                    + "journal's backlog limit is raised to 16 GiB (`TPMKMS_AUDIT_JOURNAL_MAX_BACKLOG_BYTES`): at these "
                    + "rates the default 1 GiB fills in well under a minute. In a deployment the audit service's "
                    + "ingestion (\"Audit service\" above: about 30,000 records/s) bounds the sustained rate of audited "
                    + "items; batches above it draw on the journal's backlog, which absorbs bursts (1 GiB is about "
                    + "three million records) and then refuses calls (fail closed).%n%n", options.threads, options.channels,
                    options.warmup.toMillis() / 1000.0 + " s", options.window.toMillis() / 1000.0 + " s",
                    options.rounds, options.serviceWarmup.toMillis() / 1000.0 + " s"));
            b.append("| workload | round items/s | median items/s | vs one call per item | p50 ms per call | p99 ms "
                    + "per call | service CPU per item (median) |\n|---|---|---:|---:|---:|---:|---:|\n");
            double base = medianItemsPerSecond(RAW);
            for (String row : ROWS) {
                Measurement m = median(row);
                String each = String.join(", ", rounds.get(row).stream().map(x -> String.format(Locale.ROOT, "%.0f",
                        itemsPerSecond(x, row))).toList());
                b.append(String.format(Locale.ROOT, "| %s | %s | %.0f | %s | %.2f | %.2f | %.1f µs |%n", row, each,
                        medianItemsPerSecond(row), row.equals(RAW) ? "-" : String.format(Locale.ROOT, "%.2f×",
                                medianItemsPerSecond(row) / base), m.p50Micros() / 1000, m.p99Micros() / 1000,
                        medianCpu(row)));
            }
            b.append(String.format(Locale.ROOT, "%nBatches of 16 gave %.1f× and of 128 %.1f× the items/s of one call "
                    + "per item; the client library ran at %.0f %% of the raw stub's rate.%n%n",
                    medianItemsPerSecond(BATCH_16) / base, medianItemsPerSecond(BATCH_128) / base,
                    100 * medianItemsPerSecond(LIBRARY) / base));
            b.append("The Kubernetes KMS v2 plugin (kms-plugin, in this process on a UNIX socket, its own "
                    + "`TpmkmsClient` to the service): `v2.KeyManagementService/Encrypt` of a 32-byte DEK through the "
                    + "generated v2 stub, the calls kube-apiserver makes, against the same Encrypt made directly with "
                    + "the client library; same rounds:\n\n");
            b.append("| workload | threads | median calls/s | p50 ms | p99 ms | plugin's added p50 |\n"
                    + "|---|---:|---:|---:|---:|---:|\n");
            for (int t : kms.keySet()) {
                for (String row : KMS_ROWS) {
                    Measurement m = kmsMedian(t, row);
                    b.append(String.format(Locale.ROOT, "| %s | %d | %.0f | %.2f | %.2f | %s |%n", row, t,
                            m.opsPerSecond(), m.p50Micros() / 1000, m.p99Micros() / 1000, row.equals(KMS_DIRECT) ? "-"
                                    : String.format(Locale.ROOT, "%+.2f ms", (m.p50Micros()
                                    - kmsMedian(t, KMS_DIRECT).p50Micros()) / 1000)));
                }
            }
            b.append("\n");
            b.append("Service CPU per item: user + system time of the key service's process over the row (warm-up "
                    + "included) divided by the items at the row's rate over the same time; it includes audit "
                    + "delivery and GC.\n\n");
            b.append("Reproduce: `java -jar bench/target/tpmkms-bench.jar --client` (after `./mvnw -B package "
                    + "-DskipTests`).\n");
            return b.toString();
        }
    }

    private ClientBenchmark() {}

    static int main(String[] args) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("tpmkms-bench: " + e.getMessage());
            System.err.println(USAGE);
            return 2;
        }
        try {
            Result r = run(options, System.out);
            return r.errors() == 0 ? 0 : 1;
        } catch (Exception e) {
            System.err.println("tpmkms-bench: " + LoadRunner.describe(e));
            e.printStackTrace(System.err);
            return 1;
        }
    }

    /** Encrypt 1 KiB per item: one call per item, through the stub or the library, or batches of {@code n}. */
    static final class Rows implements AutoCloseable {
        final ManagedChannel[] channels;
        final TpmkmsClient[] clients;

        Rows(String target, int channelCount) {
            channels = new ManagedChannel[channelCount];
            clients = new TpmkmsClient[channelCount];
            for (int i = 0; i < channelCount; i++) {
                channels[i] = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
                        .userAgent("tpmkms-bench").maxInboundMessageSize(8 << 20).build();
                clients[i] = TpmkmsClient.builder().target(target).credentials(TokenSource.none())
                        .retries(RetryPolicy.DEFAULT).build();
            }
        }

        Workload workload(String row) {
            return new Workload() {
                @Override
                public String id() {
                    return row;
                }

                @Override
                public String description() {
                    return row;
                }

                @Override
                public Operation newOperation(int thread, int threads) {
                    ManagedChannel channel = channels[thread % channels.length];
                    TpmkmsClient client = clients[thread % clients.length];
                    KeyServiceGrpc.KeyServiceBlockingStub stub = KeyServiceGrpc.newBlockingStub(channel);
                    SecureRandom random = new SecureRandom();
                    byte[] plaintext = new byte[GrpcWorkloads.PAYLOAD_BYTES];
                    byte[] aad = new byte[GrpcWorkloads.AAD_BYTES];
                    random.nextBytes(plaintext);
                    random.nextBytes(aad);
                    EncryptRequest item = EncryptRequest.newBuilder().setKey(GrpcWorkloads.AES_KEY)
                            .setPlaintext(ByteString.copyFrom(plaintext))
                            .setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build();
                    int n = ITEMS.get(row);
                    BatchEncryptRequest.Builder bb = BatchEncryptRequest.newBuilder();
                    for (int i = 0; i < n; i++) bb.addItems(item);
                    BatchEncryptRequest batch = bb.build();
                    return new Operation() {
                        ByteString last;

                        @Override
                        public void run() {
                            if (row.equals(RAW)) {
                                last = check(stub.withDeadlineAfter(30, TimeUnit.SECONDS).encrypt(item));
                            } else if (row.equals(LIBRARY)) {
                                last = check(client.encryptResponse(GrpcWorkloads.AES_KEY, plaintext, aad));
                            } else {
                                BatchEncryptResponse r = stub.withDeadlineAfter(30, TimeUnit.SECONDS).batchEncrypt(batch);
                                if (r.getResultsCount() != n) {
                                    throw new IllegalStateException(r.getResultsCount() + " results for " + n + " items");
                                }
                                for (var x : r.getResultsList()) {
                                    if (!x.hasResponse()) throw new IllegalStateException("item failed: " + x.getError());
                                    last = check(x.getResponse());
                                }
                            }
                        }

                        @Override
                        public void verifyLast() {
                            if (last == null) return;
                            byte[] back = stub.decrypt(DecryptRequest.newBuilder().setKey(GrpcWorkloads.AES_KEY)
                                    .setCiphertext(last).setAdditionalAuthenticatedData(ByteString.copyFrom(aad)).build())
                                    .getPlaintext().toByteArray();
                            if (!Arrays.equals(back, plaintext)) {
                                throw new IllegalStateException("a ciphertext of the run did not decrypt to its plaintext");
                            }
                        }
                    };
                }
            };
        }

        /** Encrypt of a 32-byte DEK: directly with the client library, or through the plugin's socket. */
        Workload kms(String row, String pluginTarget) {
            return new Workload() {
                @Override
                public String id() {
                    return row;
                }

                @Override
                public String description() {
                    return row;
                }

                @Override
                public Operation newOperation(int thread, int threads) {
                    TpmkmsClient client = clients[thread % clients.length];
                    byte[] dek = new byte[32];
                    new SecureRandom().nextBytes(dek);
                    ManagedChannel socket = row.equals(KMS_PLUGIN)
                            ? Grpc.newChannelBuilder(pluginTarget, InsecureChannelCredentials.create()).build() : null;
                    var plugin = socket == null ? null : io.tpmkms.kmsplugin.v2.KeyManagementServiceGrpc.newBlockingStub(socket);
                    var request = io.tpmkms.kmsplugin.v2.EncryptRequest.newBuilder().setPlaintext(ByteString.copyFrom(dek))
                            .setUid("bench").build();
                    return new Operation() {
                        ByteString last;
                        String keyId = "";
                        Map<String, ByteString> annotations = Map.of();

                        @Override
                        public void run() {
                            if (plugin == null) {
                                last = client.encryptResponse(GrpcWorkloads.AES_KEY, dek, null).getCiphertext();
                            } else {
                                var r = plugin.withDeadlineAfter(30, TimeUnit.SECONDS).encrypt(request);
                                last = r.getCiphertext();
                                keyId = r.getKeyId();
                                annotations = r.getAnnotationsMap();
                            }
                        }

                        @Override
                        public void verifyLast() {
                            if (last == null) return;
                            byte[] back = plugin == null ? client.decrypt(GrpcWorkloads.AES_KEY, last.toByteArray(), null)
                                    : plugin.decrypt(io.tpmkms.kmsplugin.v2.DecryptRequest.newBuilder().setCiphertext(last)
                                    .setKeyId(keyId).putAllAnnotations(annotations).setUid("bench").build())
                                    .getPlaintext().toByteArray();
                            if (socket != null) socket.shutdownNow();
                            if (!Arrays.equals(back, dek)) throw new IllegalStateException("the DEK did not come back");
                        }
                    };
                }
            };
        }

        private static ByteString check(EncryptResponse r) {
            if (r.getCiphertext().size() != GrpcWorkloads.CIPHERTEXT_BYTES || r.getVersion() != 1) {
                throw new IllegalStateException("unexpected Encrypt answer: " + r.getCiphertext().size() + " bytes");
            }
            return r.getCiphertext();
        }

        @Override
        public void close() {
            for (TpmkmsClient c : clients) c.close();
            for (ManagedChannel c : channels) c.shutdownNow();
        }
    }

    static Result run(Options options, PrintStream out) throws Exception {
        MachineInfo machine = MachineInfo.current();
        String loadStart = MachineInfo.loadAverage();
        Map<String, List<Measurement>> rounds = new LinkedHashMap<>();
        Map<String, List<Double>> cpu = new LinkedHashMap<>();
        Map<Integer, Map<String, List<Measurement>>> kms = new LinkedHashMap<>();
        out.println("starting a key service ...");
        // no audit service drains the journal here: at batch rates (one record per item) the default 1 GiB
        // backlog fills within a minute and the service rightly refuses calls (fail closed)
        try (ServiceProcess service = ServiceProcess.start(ServiceProcess.KEY_SERVICE, options.serviceJar(),
                options.startTimeout(), Map.of("TPMKMS_AUDIT_JOURNAL_MAX_BACKLOG_BYTES", JOURNAL_BACKLOG));
             GrpcWorkloads keys = new GrpcWorkloads(service.target(), 1, InsecureChannelCredentials.create());
             Rows rows = new Rows(service.target(), options.channels())) {
            keys.prepare(true);
            for (String row : ROWS) {
                new LoadRunner(Duration.ofMillis(options.serviceWarmup().toMillis() / ROWS.size()),
                        Duration.ofMillis(200)).run(rows.workload(row), options.threads());
            }
            out.printf(Locale.ROOT, "warmed up the service for %s%n", options.serviceWarmup());
            LoadRunner runner = new LoadRunner(options.warmup(), options.window());
            double rowSeconds = (options.warmup().toMillis() + options.window().toMillis()) / 1000.0;
            for (int round = 1; round <= options.rounds(); round++) {
                List<String> order = new ArrayList<>(ROWS);
                java.util.Collections.rotate(order, -((round - 1) % order.size()));
                for (String row : order) {
                    CpuMeter meter = new CpuMeter().process("service", service.pid());
                    double cpu0 = meter.seconds().get("service");
                    Measurement m = runner.run(rows.workload(row), options.threads());
                    double cpuSeconds = meter.seconds().get("service") - cpu0;
                    double items = m.opsPerSecond() * ITEMS.get(row);
                    double micros = items <= 0 ? Double.NaN : cpuSeconds * 1e6 / (items * rowSeconds);
                    cpu.computeIfAbsent(row, k -> new ArrayList<>()).add(micros);
                    rounds.computeIfAbsent(row, k -> new ArrayList<>()).add(m);
                    out.printf(Locale.ROOT, "round %d %-44s %9.0f items/s  p50 %.2f ms  p99 %.2f ms  service CPU "
                            + "%.1f µs/item  errors %d%s%n", round, row, items, m.p50Micros() / 1000,
                            m.p99Micros() / 1000, micros, m.errors(),
                            m.firstError() == null ? "" : " (" + m.firstError() + ")");
                }
            }
            java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("tpmkms-bench-kms");
            try (TpmkmsClient pluginsClient = TpmkmsClient.builder().target(service.target())
                    .credentials(TokenSource.none()).build();
                 io.tpmkms.kmsplugin.KmsPluginServer plugin = io.tpmkms.kmsplugin.KmsPluginServer.start(
                         dir.resolve("kms.sock"), GrpcWorkloads.AES_KEY, pluginsClient)) {
                List<Integer> levels = options.threads() == 1 ? List.of(1) : List.of(1, options.threads());
                for (String row : KMS_ROWS) {
                    new LoadRunner(Duration.ofMillis(options.serviceWarmup().toMillis() / ROWS.size()),
                            Duration.ofMillis(200)).run(rows.kms(row, plugin.target()), options.threads());
                }
                for (int round = 1; round <= options.rounds(); round++) {
                    for (int t : levels) {
                        List<String> order = new ArrayList<>(KMS_ROWS);
                        java.util.Collections.rotate(order, -((round - 1) % order.size()));
                        for (String row : order) {
                            Measurement m = runner.run(rows.kms(row, plugin.target()), t);
                            kms.computeIfAbsent(t, k -> new LinkedHashMap<>()).computeIfAbsent(row,
                                    k -> new ArrayList<>()).add(m);
                            out.printf(Locale.ROOT, "round %d %-54s %2d threads %8.0f calls/s  p50 %.2f ms  p99 %.2f ms"
                                    + "  errors %d%s%n", round, row, t, m.opsPerSecond(), m.p50Micros() / 1000,
                                    m.p99Micros() / 1000, m.errors(), m.firstError() == null ? "" : " ("
                                    + m.firstError() + ")");
                        }
                    }
                }
            } finally {
                java.nio.file.Files.deleteIfExists(dir.resolve("kms.sock"));
                java.nio.file.Files.deleteIfExists(dir);
            }
            Result r = new Result(machine, options, rounds, cpu, kms, loadStart, MachineInfo.loadAverage(),
                    Instant.now());
            out.printf(Locale.ROOT, "items/s: one call per item %.0f, client library %.0f, batches of 1 %.0f, 16 %.0f, "
                    + "128 %.0f%n", r.medianItemsPerSecond(RAW), r.medianItemsPerSecond(LIBRARY),
                    r.medianItemsPerSecond(BATCH_1), r.medianItemsPerSecond(BATCH_16), r.medianItemsPerSecond(BATCH_128));
            if (options.report() != null && r.errors() == 0) {
                ReportDocument.write(options.report(), SECTION, r.section());
                out.println("report: " + options.report());
            }
            return r;
        }
    }
}

package io.tpmkms.key.imports;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.agroal.api.AgroalDataSource;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.key.backend.BackendRegistry;
import io.tpmkms.platform.audit.AuditJournal;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.software.FileRootKeySource;
import io.tpmkms.protection.software.SoftwareKeyProtectionBackend;
import io.tpmkms.testing.PostgresResource;
import jakarta.inject.Inject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.spec.X509EncodedKeySpec;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Import jobs and ImportKeyVersion on SOFTWARE through the real gRPC server and
 * PostgreSQL: the openssl interop ({@link ImportInteropCases}), the bad-input
 * matrix (each: status, reason, and the key's versions unchanged), import-only
 * keys, re-import of destroyed versions, listing, a lost generation, a job that
 * survives a flush of what the backend holds, and the audit trail.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class ImportTest extends ImportInteropCases {
  @Inject AgroalDataSource db;
  @Inject BackendRegistry backends;

  @Override ProtectionLevel level() { return ProtectionLevel.SOFTWARE; }

  @Override String ns() { return "imp"; }

  // ---- jobs -------------------------------------------------------------------------------------

  @Test
  void createJob_validatesAndRefusesDuplicates() {
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_JOB_NAME", () -> client.keys().createImportJob(
        CreateImportJobRequest.newBuilder().setNamespace("imp").setJobId("bad/id")
            .setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_JOB_NAME", () -> client.keys().createImportJob(
        CreateImportJobRequest.newBuilder().setNamespace("IMP").setJobId("j")
            .setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_METHOD", () -> client.keys().createImportJob(
        CreateImportJobRequest.newBuilder().setNamespace("imp").setJobId("nomethod").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().createImportJob(
        CreateImportJobRequest.newBuilder().setNamespace("imp").setJobId("longwait")
            .setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256).setWait(Duration.newBuilder().setSeconds(61)).build()));
    ImportJob j = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace("imp")
        .setJobId("dup").setImportMethod(ImportMethod.RSA_OAEP_4096_SHA256_AES_256).build()).getImportJob();
    assertEquals("imp/dup", j.getName());
    assertEquals(ProtectionLevel.SOFTWARE, j.getProtectionLevel(), "the server default, as CreateKey");
    assertTrue(j.getState() == ImportJobState.PENDING_GENERATION || j.getState() == ImportJobState.ACTIVE);
    assertStatus(Status.Code.ALREADY_EXISTS, "IMPORT_JOB_ALREADY_EXISTS", () -> client.keys().createImportJob(
        CreateImportJobRequest.newBuilder().setNamespace("imp").setJobId("dup")
            .setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256).build()));
    assertStatus(Status.Code.NOT_FOUND, "IMPORT_JOB_NOT_FOUND", () -> client.keys().getImportJob(
        GetImportJobRequest.newBuilder().setImportJob("imp/nope").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_JOB_NAME", () -> client.keys().getImportJob(
        GetImportJobRequest.newBuilder().setImportJob("no-slash").build()));
  }

  @Test
  void activeJob_hasAnRsaWrappingKeyOfTheMethodsSize_expiringAfterTheLifetime() throws Exception {
    ImportJob j = activeJob("imp", ImportMethod.RSA_OAEP_4096_SHA256);
    var pub = (java.security.interfaces.RSAPublicKey) KeyFactory.getInstance("RSA")
        .generatePublic(new X509EncodedKeySpec(Openssl.der(j.getPublicKeyPem())));
    assertEquals(4096, pub.getModulus().bitLength());
    assertEquals(72 * 3600, j.getExpireTime().getSeconds() - j.getGenerateTime().getSeconds(), "72 h default");
    assertFalse(j.hasAttestation(), "SOFTWARE jobs cannot attest");
    assertEquals(j, client.keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob(j.getName()).build())
        .getImportJob());
  }

  @Test
  void listJobs_pagesInJobIdOrder() {
    Set<String> made = new HashSet<>();
    for (int i = 0; i < 5; i++) {
      made.add(client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace("implist")
          .setJobId("l" + i).setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256).build()).getImportJob().getName());
    }
    List<String> seen = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      ListImportJobsResponse r = client.keys().listImportJobs(ListImportJobsRequest.newBuilder()
          .setNamespace("implist").setPageSize(2).setPageToken(token).build());
      r.getImportJobsList().forEach(j -> seen.add(j.getName()));
      token = r.getNextPageToken();
      pages++;
    } while (!token.isEmpty());
    assertEquals(List.of("implist/l0", "implist/l1", "implist/l2", "implist/l3", "implist/l4"), seen);
    assertEquals(3, pages);
    assertEquals(made, new HashSet<>(seen));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> client.keys().listImportJobs(
        ListImportJobsRequest.newBuilder().setNamespace("implist").setPageToken("forged").build()));
  }

  @Test
  void pendingJobWhoseGenerationWasLost_isGeneratedOnceByTheScheduler() throws Exception {
    // a replica that died between the insert and the generation leaves this row
    sql("INSERT INTO import_job (id, namespace, job_id, method, protection_level, state, backend_id,"
        + " lifetime_seconds, create_time, row_version) VALUES (nextval('import_job_seq'), 'imp', 'lost',"
        + " 'RSA_OAEP_3072_SHA256_AES_256', 'SOFTWARE', 'PENDING_GENERATION', 'software', 3600,"
        + " now() - interval '1 minute', 0)");
    GetImportJobRequest get = GetImportJobRequest.newBuilder().setImportJob("imp/lost").build();
    String key = key(KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, false);
    ImportJob j = client.keys().getImportJob(get).getImportJob();
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (j.getState() == ImportJobState.PENDING_GENERATION && System.nanoTime() < deadline) {
      // until then it cannot be used; the scheduler may install it between the read above and this import,
      // and then the zeros are refused as a wrapped key instead (INVALID_ARGUMENT) — that attempt proves nothing
      ImportJob pending = j;
      try {
        importInto(key, pending, Algorithm.AES_256_GCM, new byte[400]);
        throw new AssertionError("an import of 400 zero bytes succeeded");
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() == Status.Code.INVALID_ARGUMENT) {
          assertStatus(Status.Code.INVALID_ARGUMENT, "WRAPPED_KEY_INVALID", () -> {
            throw e;
          });
          assertEquals(ImportJobState.ACTIVE, client.keys().getImportJob(get).getImportJob().getState(),
              "only a job installed meanwhile may get past the state check: " + e.getStatus());
        } else {
          assertStatus(Status.Code.FAILED_PRECONDITION, "IMPORT_JOB_NOT_ACTIVE", () -> {
            throw e;
          });
        }
      }
      Thread.sleep(200);
      j = client.keys().getImportJob(get).getImportJob();
    }
    assertEquals(ImportJobState.ACTIVE, j.getState());
    assertEquals(3600, j.getExpireTime().getSeconds() - j.getGenerateTime().getSeconds());
    Thread.sleep(2500); // another scheduler pass must not generate again
    assertEquals(j, client.keys().getImportJob(get).getImportJob(), "installed exactly once");
  }

  /**
   * A job outlives whatever the backend holds in memory: its wrapping key is the stored blob. The backend's
   * cached key is dropped, and a fresh backend made from nothing but the root seed file opens the stored
   * blob (what a restarted service does), then the import through the service still works.
   */
  @Test
  void job_survivesTheBackendForgettingIt_itsBlobIsStored() throws Exception {
    ImportJob job = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    byte[] blob = jobBlob("imp", job.getJobId());
    assertNotNull(blob);
    backends.forLevel(io.tpmkms.protection.ProtectionLevel.SOFTWARE).destroy(new KeyHandle(blob)); // flush
    byte[] k = openssl.rand(32);
    byte[] oaepOfK = openssl.wrap(job.getPublicKeyPem(), k, true);
    String seed = ConfigProvider.getConfig().getValue("tpmkms.backend.software.seed-file", String.class);
    try (var fresh = new SoftwareKeyProtectionBackend(new FileRootKeySource(Path.of(seed)))) {
      assertArrayEquals(k, fresh.asymmetricDecrypt(new KeyHandle(blob), oaepOfK), "a restarted backend unwraps");
    }
    byte[] material = openssl.rand(32);
    String key = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, true);
    importInto(key, job, Algorithm.HMAC_SHA256, openssl.wrap(job.getPublicKeyPem(), material, false));
    byte[] data = "after a flush".getBytes(StandardCharsets.US_ASCII);
    assertArrayEquals(openssl.hmacSha256(material, data), client.keys().macSign(MacSignRequest.newBuilder()
        .setKey(key).setData(ByteString.copyFrom(data)).build()).getMac().toByteArray());
  }

  // ---- import-only keys, primaries, re-import ------------------------------------------------------

  @Test
  void importOnlyKey_hasNoVersionUntilTheFirstImport_andNeverRotates() throws Exception {
    String key = key(KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, true);
    Key k = client.keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey();
    assertTrue(k.getImportOnly());
    assertEquals(0, k.getPrimaryVersion());
    assertFalse(k.hasPrimary());
    assertEquals(0, versions(key).size());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_HAS_NO_PRIMARY", () -> client.keys().encrypt(
        EncryptRequest.newBuilder().setKey(key).setPlaintext(ByteString.copyFromUtf8("x")).build()));
    unchanged(key, "KEY_IMPORT_ONLY", Status.Code.FAILED_PRECONDITION,
        () -> client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ROTATION_PERIOD", () -> client.keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("imp").setName("io-rot").setPurpose(KeyPurpose.ENCRYPT_DECRYPT)
            .setImportOnly(true).setRotationPeriod(Duration.newBuilder().setSeconds(86400)).build()));

    ImportJob job = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    importInto(key, job, Algorithm.AES_256_GCM, openssl.wrap(job.getPublicKeyPem(), openssl.rand(32), false));
    KeyVersion v2 = client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(key)
        .setImportJob(job.getName()).setAlgorithm(Algorithm.AES_256_GCM).setMakePrimary(true)
        .setWrappedKey(ByteString.copyFrom(openssl.wrap(job.getPublicKeyPem(), openssl.rand(32), false))).build())
        .getVersion();
    assertEquals(2, v2.getVersion());
    assertTrue(v2.getPrimary(), "make_primary");
    assertEquals(2, client.keys().encrypt(EncryptRequest.newBuilder().setKey(key)
        .setPlaintext(ByteString.copyFromUtf8("x")).build()).getVersion());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_IMPORT_ONLY",
        () -> client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build()));
  }

  @Test
  void destroyedImportedVersion_reimportsWithTheSameMaterialOnly() throws Exception {
    byte[] material = openssl.rand(32);
    ImportJob job = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String key = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, false); // v1 generated, primary
    KeyVersion v2 = importInto(key, job, Algorithm.HMAC_SHA256, openssl.wrap(job.getPublicKeyPem(), material, false));
    assertEquals(2, v2.getVersion());
    // v1 (generated, ENABLED) and v2 (imported, not DESTROYED) cannot be re-imported
    for (int n : new int[] {1, 2}) {
      unchanged(key, "KEY_VERSION_NOT_REIMPORTABLE", Status.Code.FAILED_PRECONDITION, () -> reimport(key, job, n,
          openssl.wrap(job.getPublicKeyPem(), material, false)));
    }
    client.keys().scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder().setKey(key)
        .setVersion(2).setDelay(Duration.newBuilder()).build());
    waitForState(key, 2, KeyVersionState.DESTROYED);

    unchanged(key, "KEY_MATERIAL_MISMATCH", Status.Code.FAILED_PRECONDITION,
        () -> reimport(key, job, 2, openssl.wrap(job.getPublicKeyPem(), openssl.rand(32), false)));
    KeyVersion back = client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(key)
        .setImportJob(job.getName()).setAlgorithm(Algorithm.HMAC_SHA256).setVersion(2)
        .setWrappedKey(ByteString.copyFrom(openssl.wrap(job.getPublicKeyPem(), material, false))).build()).getVersion();
    assertEquals(2, back.getVersion());
    assertEquals(KeyVersionState.ENABLED, back.getState());
    assertTrue(back.getImported());
    assertEquals(2, versions(key).size(), "no new version");
    byte[] data = "again".getBytes(StandardCharsets.US_ASCII);
    assertTrue(client.keys().macVerify(MacVerifyRequest.newBuilder().setKey(key).setVersion(2)
        .setData(ByteString.copyFrom(data)).setMac(ByteString.copyFrom(openssl.hmacSha256(material, data))).build())
        .getValid(), "the re-imported version holds the same material");
  }

  @Test
  void revokedThenDestroyedVersion_cannotBeReimported_evenWithItsOwnMaterial() throws Exception {
    byte[] material = openssl.rand(32);
    ImportJob job = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String key = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, false); // v1 generated, primary
    assertEquals(2, importInto(key, job, Algorithm.HMAC_SHA256, openssl.wrap(job.getPublicKeyPem(), material, false))
        .getVersion());
    client.keys().revokeKeyVersion(RevokeKeyVersionRequest.newBuilder().setKey(key).setVersion(2).build());
    client.keys().scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder().setKey(key)
        .setVersion(2).setDelay(Duration.newBuilder()).build());
    waitForState(key, 2, KeyVersionState.DESTROYED);

    unchanged(key, "KEY_VERSION_NOT_REIMPORTABLE", Status.Code.FAILED_PRECONDITION,
        () -> reimport(key, job, 2, openssl.wrap(job.getPublicKeyPem(), material, false)));
  }

  @Test
  void jobWhoseWrappingKeyBlobCannotBeOpened_isTheJobsFault_andChangesNothing() throws Exception {
    ImportJob job = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String key = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, true);
    byte[] wrapped = openssl.wrap(job.getPublicKeyPem(), openssl.rand(32), false);
    // a blob from another installation, or damaged: the backend cannot open it
    sql("UPDATE import_job SET wrapping_key_blob = set_byte(wrapping_key_blob, 40, get_byte(wrapping_key_blob, 40) # 1)"
        + " WHERE namespace = 'imp' AND job_id = '" + job.getJobId() + "'");
    unchanged(key, "KEY_MATERIAL_UNUSABLE", Status.Code.FAILED_PRECONDITION,
        () -> importInto(key, job, Algorithm.HMAC_SHA256, wrapped));
    io.grpc.StatusRuntimeException e = io.tpmkms.testing.GrpcClient.assertFailure(Status.Code.FAILED_PRECONDITION,
        "KEY_MATERIAL_UNUSABLE", () -> importInto(key, job, Algorithm.HMAC_SHA256, wrapped));
    assertTrue(e.getStatus().getDescription().contains("import job \"" + job.getName() + "\""), e.getStatus()::toString);
  }

  // ---- bad input: a clear error, nothing changes ---------------------------------------------------

  @Test
  void badInput_matrix_eachFailsWithItsReason_andChangesNothing() throws Exception {
    ImportJob job = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    ImportJob direct = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256);
    ImportJob foreign = activeJob("imp-other", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    ImportJob expired = activeJob("imp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    sql("UPDATE import_job SET expire_time = now() - interval '1 second' WHERE namespace = 'imp' AND job_id = '"
        + expired.getJobId() + "'");
    String aes = key(KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, false);
    String sign = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, false);
    String pem = job.getPublicKeyPem();
    byte[] aesKey = openssl.rand(32);
    byte[] good = openssl.wrap(pem, aesKey, false);

    String invalid = "INVALID_ARGUMENT";
    List<Object[]> cases = List.of(
        new Object[] {"expired job", aes, expired, Algorithm.AES_256_GCM, openssl.wrap(expired.getPublicKeyPem(), aesKey, false),
            "FAILED_PRECONDITION", "IMPORT_JOB_EXPIRED"},
        new Object[] {"job of another namespace", aes, foreign, Algorithm.AES_256_GCM,
            openssl.wrap(foreign.getPublicKeyPem(), aesKey, false), "FAILED_PRECONDITION", "IMPORT_JOB_MISMATCH"},
        new Object[] {"truncated blob", aes, job, Algorithm.AES_256_GCM, java.util.Arrays.copyOf(good, good.length - 8),
            invalid, "WRAPPED_KEY_INVALID"},
        new Object[] {"truncated inside the OAEP part", aes, job, Algorithm.AES_256_GCM,
            java.util.Arrays.copyOf(good, 200), invalid, "WRAPPED_KEY_INVALID"},
        new Object[] {"bit-flipped OAEP part", aes, job, Algorithm.AES_256_GCM, flip(good, 100), invalid,
            "WRAPPED_KEY_INVALID"},
        new Object[] {"bit-flipped KWP part", aes, job, Algorithm.AES_256_GCM, flip(good, 384 + 10), invalid,
            "WRAPPED_KEY_INVALID"},
        new Object[] {"wrapped for another job", aes, job, Algorithm.AES_256_GCM,
            openssl.wrap(direct.getPublicKeyPem(), aesKey, false), invalid, "WRAPPED_KEY_INVALID"},
        new Object[] {"RSA key declared as EC", sign, job, Algorithm.EC_SIGN_P256_SHA256,
            openssl.wrap(pem, openssl.pkcs8("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"), false),
            invalid, "KEY_MATERIAL_INVALID"},
        new Object[] {"16-byte AES declared as AES-256", aes, job, Algorithm.AES_256_GCM,
            openssl.wrap(pem, openssl.rand(16), false), invalid, "KEY_MATERIAL_INVALID"},
        new Object[] {"RSA-1024", sign, job, Algorithm.RSA_SIGN_PKCS1_2048_SHA256,
            openssl.wrap(pem, openssl.pkcs8("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"), false),
            invalid, "KEY_MATERIAL_INVALID"},
        new Object[] {"P-521 declared as P-384", sign, job, Algorithm.EC_SIGN_P384_SHA384,
            openssl.wrap(pem, openssl.pkcs8("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"), false),
            invalid, "KEY_MATERIAL_INVALID"},
        new Object[] {"secp256k1 declared as P-256", sign, job, Algorithm.EC_SIGN_P256_SHA256,
            openssl.wrap(pem, openssl.pkcs8("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"), false),
            invalid, "KEY_MATERIAL_INVALID"},
        new Object[] {"PKCS#8 with trailing garbage", sign, job, Algorithm.EC_SIGN_P256_SHA256,
            openssl.wrap(pem, concat(openssl.ecP256(), new byte[] {0, 0, 0, 1}), false), invalid,
            "KEY_MATERIAL_INVALID"},
        new Object[] {"asymmetric material with a direct method", sign, direct, Algorithm.EC_SIGN_P256_SHA256,
            openssl.wrap(pem, aesKey, false), invalid, "INVALID_IMPORT_METHOD"},
        new Object[] {"algorithm of another purpose", aes, job, Algorithm.HMAC_SHA256, good, invalid,
            "INVALID_ALGORITHM"},
        new Object[] {"no algorithm", aes, job, Algorithm.ALGORITHM_UNSPECIFIED, good, invalid, "INVALID_ALGORITHM"},
        new Object[] {"empty wrapped key", aes, job, Algorithm.AES_256_GCM, new byte[0], invalid,
            "WRAPPED_KEY_INVALID"},
        new Object[] {"wrapped key over 64 KiB", aes, job, Algorithm.AES_256_GCM,
            concat(good, new byte[64 * 1024 - good.length + 8]), invalid, "WRAPPED_KEY_INVALID"});
    List<String> wrong = new ArrayList<>();
    for (Object[] c : cases) {
      String key = (String) c[1];
      ImportJob j = (ImportJob) c[2];
      try {
        unchanged(key, (String) c[6], Status.Code.valueOf((String) c[5]),
            () -> importInto(key, j, (Algorithm) c[3], (byte[]) c[4]));
      } catch (AssertionError e) {
        wrong.add(c[0] + ": " + e.getMessage());
      }
    }
    assertEquals(List.of(), wrong);
    assertStatus(Status.Code.NOT_FOUND, "IMPORT_JOB_NOT_FOUND", () -> client.keys().importKeyVersion(
        ImportKeyVersionRequest.newBuilder().setKey(aes).setImportJob("imp/none").setAlgorithm(Algorithm.AES_256_GCM)
            .setWrappedKey(ByteString.copyFrom(good)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_JOB_NAME", () -> client.keys().importKeyVersion(
        ImportKeyVersionRequest.newBuilder().setKey(aes).setImportJob("imp").setAlgorithm(Algorithm.AES_256_GCM)
            .setWrappedKey(ByteString.copyFrom(good)).build()));
    assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND", () -> importInto("imp/missing", job, Algorithm.AES_256_GCM, good));
    // and the same job and key still work
    assertEquals(2, importInto(aes, job, Algorithm.AES_256_GCM, good).getVersion());
  }

  // ---- audit ------------------------------------------------------------------------------------

  @Test
  void audit_recordsTheJobAndTheImportedVersion_neverTheMaterial() throws Exception {
    byte[] material = openssl.rand(32);
    ImportJob job = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace("impaudit")
        .setJobId("j1").setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
        .setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    client.keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob("impaudit/j1").build());
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("impaudit").setName("k")
        .setPurpose(KeyPurpose.MAC).setImportOnly(true).build());
    byte[] wrapped = openssl.wrap(job.getPublicKeyPem(), material, false);
    importInto("impaudit/k", job, Algorithm.HMAC_SHA256, wrapped);
    assertStatus(Status.Code.INVALID_ARGUMENT, "WRAPPED_KEY_INVALID",
        () -> importInto("impaudit/k", job, Algorithm.HMAC_SHA256, flip(wrapped, 3)));

    List<String> ops = new ArrayList<>();
    for (AuditEvent e : events("impaudit/")) {
      ops.add(e.getOperation().replaceAll(".*/", "") + ":" + e.getKey() + ":" + e.getKeyVersion() + ":"
          + e.getOutcome() + ":" + e.getOutcomeReason());
    }
    assertEquals(List.of("CreateImportJob:impaudit/importJobs/j1:0:OK:",
        "GenerateWrappingKey:impaudit/importJobs/j1:0:OK:",
        "GetImportJob:impaudit/importJobs/j1:0:OK:",
        "CreateKey:impaudit/k:0:OK:",
        "ImportKeyVersion:impaudit/k:1:OK:",
        "ImportKeyVersion:impaudit/k:0:INVALID_ARGUMENT:WRAPPED_KEY_INVALID"), ops);
    String hex = java.util.HexFormat.of().formatHex(material);
    for (AuditEvent e : events("impaudit/")) {
      byte[] raw = e.toByteArray();
      assertFalse(indexOf(raw, material) >= 0 || new String(raw, StandardCharsets.ISO_8859_1).contains(hex),
          "no material in the audit trail");
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  KeyVersion reimport(String key, ImportJob job, int version, byte[] wrapped) {
    return client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(key)
        .setImportJob(job.getName()).setAlgorithm(Algorithm.HMAC_SHA256).setVersion(version)
        .setWrappedKey(ByteString.copyFrom(wrapped)).build()).getVersion();
  }

  /** The call fails with the status and reason, and the key and its versions are as before. */
  void unchanged(String key, String reason, Status.Code code, Executable call) {
    Key before = client.keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey();
    List<KeyVersion> versionsBefore = versions(key);
    assertStatus(code, reason, call);
    assertEquals(before, client.keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey(),
        "the key is unchanged");
    assertEquals(versionsBefore, versions(key), "the versions are unchanged");
  }

  List<KeyVersion> versions(String key) {
    return client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key).setIncludeDestroyed(true)
        .build()).getVersionsList();
  }

  void waitForState(String key, int version, KeyVersionState state) throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (System.nanoTime() < deadline) {
      if (client.keys().getKeyVersion(GetKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build())
          .getVersion().getState() == state) {
        return;
      }
      Thread.sleep(200);
    }
    throw new AssertionError("version " + version + " of " + key + " did not become " + state);
  }

  byte[] jobBlob(String ns, String jobId) throws Exception {
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement(
            "SELECT wrapping_key_blob FROM import_job WHERE namespace = ? AND job_id = ?")) {
      ps.setString(1, ns);
      ps.setString(2, jobId);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getBytes(1) : null;
      }
    }
  }

  void sql(String s) throws Exception {
    try (Connection c = db.getConnection(); var st = c.createStatement()) {
      st.execute(s);
    }
  }

  static byte[] flip(byte[] b, int at) {
    byte[] out = b.clone();
    out[at] ^= 0x01;
    return out;
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  /** Events of resources starting with the prefix, from the outbox and the journal, in time order. */
  List<AuditEvent> events(String prefix) throws Exception {
    List<AuditEvent> out = new ArrayList<>();
    try (Connection c = db.getConnection(); var st = c.createStatement();
        var rs = st.executeQuery("SELECT payload FROM audit_outbox ORDER BY id")) {
      while (rs.next()) {
        AuditEvent e = AuditEvent.parseFrom(rs.getBytes(1));
        if (e.getKey().startsWith(prefix)) out.add(e);
      }
    }
    Path journal = Path.of(ConfigProvider.getConfig().getValue("tpmkms.audit.journal.dir", String.class));
    for (byte[] p : AuditJournal.pending(journal)) {
      AuditEvent e = AuditEvent.parseFrom(p);
      if (e.getKey().startsWith(prefix)) out.add(e);
    }
    out.sort(Comparator.comparingLong((AuditEvent e) -> e.getTime().getSeconds())
        .thenComparingInt(e -> e.getTime().getNanos()));
    return out;
  }
}

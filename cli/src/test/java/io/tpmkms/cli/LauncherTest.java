package io.tpmkms.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.proto.audit.v1.GetCheckpointRequest;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The real entry point in a separate JVM: environment, System.exit code, and System.out/err. */
class LauncherTest extends CliHarness {

    @Test
    void main_takesAddressFromEnvironment_andExitsWithTheErrorCode() throws Exception {
        service.fail(io.grpc.Status.Code.NOT_FOUND, "key \"ns/x\" not found", "KEY_NOT_FOUND");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                TpmkmsCommand.class.getName(), "keys", "get", "ns/x");
        pb.environment().put("TPMKMS_ADDRESS", address);
        pb.environment().put("TPMKMS_TOKEN", "token-from-the-real-environment");
        expectedAuthorization = "Bearer token-from-the-real-environment";
        Process p = pb.start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "CLI did not finish");
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);

        assertEquals(ExitCodes.NOT_FOUND, p.exitValue(), err);
        assertEquals("ns/x", service.only(GetKeyRequest.class).getKey());
        assertTrue(err.startsWith("error: key \"ns/x\" not found (NOT_FOUND, reason KEY_NOT_FOUND)"), err);
    }

    @Test
    void main_takesAuditAddressFromEnvironment() throws Exception {
        audit.fail(io.grpc.Status.Code.NOT_FOUND, "no checkpoint at sequence 5", "CHECKPOINT_NOT_FOUND");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                TpmkmsCommand.class.getName(), "audit", "checkpoint", "5");
        pb.environment().put("TPMKMS_AUDIT_ADDRESS", auditAddress);
        pb.environment().put("TPMKMS_ADDRESS", address);
        pb.environment().put("TPMKMS_TOKEN", "token-from-the-real-environment");
        expectedAuthorization = "Bearer token-from-the-real-environment";
        Process p = pb.start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "CLI did not finish");
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);

        assertEquals(ExitCodes.NOT_FOUND, p.exitValue(), err);
        assertEquals(5, audit.only(GetCheckpointRequest.class).getSequence());
        assertTrue(service.requests().isEmpty());
        assertTrue(err.startsWith("error: no checkpoint at sequence 5 (NOT_FOUND, reason CHECKPOINT_NOT_FOUND)"), err);
    }
}

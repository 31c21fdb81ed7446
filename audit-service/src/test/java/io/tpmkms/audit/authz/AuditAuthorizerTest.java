package io.tpmkms.audit.authz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AuditAuthorizerTest {
  @Test
  void producers_clientAlone_isItsServiceWithoutTheTpmkmsPrefix_orAsDeclared() {
    assertEquals(Map.of("tpmkms-key-service", "key-service", "tpmkms-policy-service", "policy-service",
            "gateway", "gateway", "bot", "payments-gw"),
        AuditAuthorizer.producers(List.of("tpmkms-key-service", " tpmkms-policy-service ", "gateway", "bot=payments-gw",
            "")));
  }

  @Test
  void producers_emptyServiceOrClient_isRefusedAtStart() {
    assertThrows(IllegalArgumentException.class, () -> AuditAuthorizer.producers(List.of("bot=")));
    assertThrows(IllegalArgumentException.class, () -> AuditAuthorizer.producers(List.of("=svc")));
  }
}

package io.tpmkms.audit;

import io.tpmkms.testing.GrpcClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** A test class that calls the audit service under test through {@link #client}, a real gRPC channel. */
abstract class ClientTest {
  static GrpcClient client;

  @BeforeAll
  static void connect() { client = new GrpcClient(); }

  @AfterAll
  static void disconnect() { client.close(); }
}

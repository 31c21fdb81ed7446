package io.tpmkms.testing;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * A test class that calls the Quarkus app under test through {@link #client}, a real gRPC channel
 * opened before its first test and closed after its last.
 */
public abstract class GrpcTest {
  protected static GrpcClient client;

  @BeforeAll
  public static void connect() { client = new GrpcClient(); }

  @AfterAll
  public static void disconnect() { client.close(); }
}

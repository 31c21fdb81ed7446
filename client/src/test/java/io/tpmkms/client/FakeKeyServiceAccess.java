package io.tpmkms.client;

/** The package-private fake key service, for tests in other packages. */
public final class FakeKeyServiceAccess implements AutoCloseable {
  private final FakeKeyService service;
  private final io.grpc.ManagedChannel channel;

  public FakeKeyServiceAccess() throws Exception {
    service = new FakeKeyService();
    channel = service.channel();
  }

  public TpmkmsClient client() {
    return TpmkmsClient.builder().channel(channel).build();
  }

  public int calls() {
    return service.calls.get();
  }

  @Override
  public void close() throws Exception {
    channel.shutdownNow();
    service.close();
  }
}

package io.tpmkms.key.error;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.GrpcErrors;
import io.tpmkms.platform.error.PersistenceErrors;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.protection.BackendException;
import java.util.Map;

/**
 * The key service's own failures: its reasons ({@link KeyReason}) for a
 * missing key or version, and how key-protection backend failures map
 * (the TPM adapter translates TPM response codes into backend kinds). The
 * platform's {@link GrpcErrors} does the rest (ServiceException, a lost race,
 * a lost database, INTERNAL).
 */
public final class KeyErrors {
  private KeyErrors() {}

  private static final String DATABASE_UNAVAILABLE = "the key database is unavailable; retry later";

  /** Every failure of a key-service call becomes a status here. */
  public static final GrpcErrors GRPC = new GrpcErrors(DATABASE_UNAVAILABLE,
      (cause, thrown) -> cause instanceof BackendException b ? fromBackend(b) : null,
      PersistenceErrors.classifier("the key was changed concurrently; retry", DATABASE_UNAVAILABLE));

  public static ServiceException keyNotFound(String key) {
    return new ServiceException(ErrorCode.NOT_FOUND, KeyReason.KEY_NOT_FOUND,
        "key \"" + key + "\" not found", Map.of("key", key), null);
  }

  public static ServiceException versionNotFound(String key, int version) {
    return new ServiceException(ErrorCode.NOT_FOUND, KeyReason.KEY_VERSION_NOT_FOUND,
        "version " + version + " of key \"" + key + "\" not found",
        Map.of("key", key, "version", Integer.toString(version)), null);
  }

  /** Backend failure kinds → codes. */
  public static ServiceException fromBackend(BackendException b) {
    return switch (b.kind()) {
      case INVALID_INPUT -> new ServiceException(ErrorCode.INVALID_ARGUMENT,
          b.getMessage() != null && b.getMessage().startsWith("decryption failed")
              ? KeyReason.DECRYPTION_FAILED : KeyReason.INVALID_REQUEST,
          b.getMessage(), Map.of(), b);
      case KEY_INVALID -> new ServiceException(ErrorCode.FAILED_PRECONDITION, KeyReason.KEY_MATERIAL_UNUSABLE,
          "the key version's material cannot be used: " + b.getMessage(), Map.of(), b);
      case PLATFORM_STATE_MISMATCH -> new ServiceException(ErrorCode.FAILED_PRECONDITION,
          KeyReason.PLATFORM_STATE_MISMATCH, b.getMessage(), Map.of(), b);
      case UNSUPPORTED -> new ServiceException(ErrorCode.UNIMPLEMENTED, KeyReason.CAPABILITY_UNAVAILABLE,
          b.getMessage(), Map.of(), b);
      case UNAVAILABLE -> new ServiceException(ErrorCode.UNAVAILABLE, KeyReason.BACKEND_UNAVAILABLE,
          "the key protection backend is unavailable; retry later", Map.of(), b);
      case RESOURCE_EXHAUSTED -> new ServiceException(ErrorCode.RESOURCE_EXHAUSTED,
          KeyReason.BACKEND_RESOURCE_EXHAUSTED, "the key protection backend is out of resources; retry later",
          Map.of(), b);
      case INTERNAL -> GrpcErrors.internal(b);
    };
  }
}

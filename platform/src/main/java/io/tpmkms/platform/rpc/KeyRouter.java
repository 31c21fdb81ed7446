package io.tpmkms.platform.rpc;

/**
 * Decides where a use of a key runs ({@link Placement#KEY_USE_LIGHT},
 * {@link Placement#KEY_USE_HEAVY}); the key service knows which keys are hot,
 * in process, or in the TPM.
 */
@FunctionalInterface
public interface KeyRouter {
  /** Where the work runs. */
  enum Where { HERE, WORKER, TPM_QUEUE }

  /**
   * @param key the key name as the request gave it (may be invalid: then any answer will do, the
   *     handler fails with the right error wherever it runs)
   * @param light whether the work is cheap enough for the event loop when the key is hot in process
   */
  Where route(String key, boolean light);

  /** For services without keys: everything on the worker pool. */
  KeyRouter WORKERS = (key, light) -> Where.WORKER;
}

package io.tpmkms.platform.rpc;

/**
 * Where an RPC's work runs (ADR 0010). gRPC delivers every call on a Netty
 * event loop; work that may block moves off it in exactly one hop.
 */
public enum Placement {
  /** Right on the event loop: in-memory work that never blocks (decisions, validation). */
  EVENT_LOOP,
  /** On the worker pool: the database, the TPM behind a lock, anything that may block or take long. */
  WORKER,
  /**
   * Cheap use of a key (symmetric, MAC, public key): on the event loop when the key is hot and in
   * process, on the TPM queue for a TPM key, else on a worker ({@link KeyRouter} decides). Work that
   * finds mid-way that it must block throws {@link MustBlock} before any effect and is re-run on a worker.
   */
  KEY_USE_LIGHT,
  /** Private-key work (~0.5-1 ms of CPU): the TPM queue for a TPM key, else a worker; never the event loop. */
  KEY_USE_HEAVY
}

package io.tpmkms.bench;

/**
 * One kind of operation to measure, e.g. "gRPC Encrypt of 1 KiB". The {@link LoadRunner} asks for
 * one {@link Operation} per client thread, so an operation may keep per-thread state (a stub, a
 * {@code Cipher}, its last output) without locking.
 */
interface Workload {

    /** Stable identifier used in the report, e.g. {@code grpc-encrypt}. */
    String id();

    /** Human description for the report table. */
    String description();

    /**
     * @param thread  index of the client thread, 0-based
     * @param threads how many client threads this run has
     */
    Operation newOperation(int thread, int threads) throws Exception;

    /** The work of one client thread. Used by that thread only. */
    interface Operation {

        /**
         * Performs one operation and checks the shape of its answer.
         *
         * @throws Exception when the call fails or answers something malformed; the runner counts it
         *                   as an error
         */
        void run() throws Exception;

        /**
         * Checks the last output for cryptographic correctness (decrypts it, verifies it), so a run
         * cannot silently measure a broken path. Called once after the timed window.
         *
         * @throws Exception when the output is wrong
         */
        default void verifyLast() throws Exception {
        }
    }
}

package io.tpmkms.bench;

/**
 * The outcome of one workload at one concurrency: throughput over the timed window and latency
 * percentiles of the operations started in it.
 *
 * @param workload    {@link Workload#id()}
 * @param description {@link Workload#description()}
 * @param threads     concurrent client threads
 * @param operations  operations completed that started inside the timed window
 * @param seconds     length of the timed window
 * @param p50Micros   median latency
 * @param p99Micros   99th percentile latency
 * @param errors      failed operations during warm-up and the timed window, plus failed sample checks
 * @param firstError  description of the first failure, or {@code null}
 */
record Measurement(String workload, String description, int threads, long operations, double seconds,
                   double p50Micros, double p99Micros, long errors, String firstError) {

    double opsPerSecond() {
        return seconds <= 0 ? 0 : operations / seconds;
    }
}

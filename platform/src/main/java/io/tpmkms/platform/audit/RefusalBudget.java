package io.tpmkms.platform.audit;

/**
 * How many refused calls are recorded one by one: at most {@code perSecond}
 * in each wall-clock second. Anyone can send calls that are refused, so
 * without a bound a flood of garbage tokens would become a flood of audit
 * records. Thread-safe (one lock, held for a few instructions).
 */
public final class RefusalBudget {
  private final int perSecond;
  private long second = Long.MIN_VALUE;
  private int used;
  private long skipped;

  public RefusalBudget(int perSecond) {
    this.perSecond = perSecond;
  }

  /**
   * -1: over budget, do not record this one (it is counted); otherwise
   * record it, and the number is how many were not recorded since the last
   * recorded one (to be mentioned in it).
   */
  public synchronized long take() {
    long now = System.currentTimeMillis() / 1000;
    if (now != second) {
      second = now;
      used = 0;
    }
    if (used >= perSecond) {
      skipped++;
      return -1;
    }
    used++;
    long s = skipped;
    skipped = 0;
    return s;
  }
}

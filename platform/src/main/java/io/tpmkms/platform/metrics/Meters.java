package io.tpmkms.platform.metrics;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The meters one bean registered, removed again when the bean is destroyed. The registry Quarkus
 * injects outlives an application in one JVM (tests start several in turn): a gauge left behind
 * would read the beans of a stopped application, and a later registration of the same name would
 * get the old meter back.
 */
public final class Meters {
  private final MeterRegistry registry;
  private final List<Meter> meters = new CopyOnWriteArrayList<>();

  public Meters(MeterRegistry registry) {
    this.registry = registry;
  }

  /** Keeps {@code meter} to remove later; returns it. */
  public <M extends Meter> M add(M meter) {
    meters.add(meter);
    return meter;
  }

  public MeterRegistry registry() {
    return registry;
  }

  /** Removes every meter added. */
  public void removeAll() {
    for (Meter m : meters) registry.remove(m);
    meters.clear();
  }
}

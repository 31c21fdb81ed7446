package io.tpmkms.protection.software;

import io.tpmkms.protection.KeyHandle;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * A bounded cache of unwrapped keys, keyed by the handle (whose equality is the
 * blob's bytes). Lookups are lock-free ({@link ConcurrentHashMap#get}); when an
 * insert takes the size over the capacity, one thread at a time evicts with the
 * second-chance (CLOCK) rule: entries used since the last sweep are kept once.
 * Under concurrent inserts the size may exceed the capacity by at most the
 * number of inserting threads until the next sweep.
 *
 * <p>Two threads missing on the same handle may both unwrap it; one result is kept.
 */
final class KeyCache<V> {
  private static final class Entry<V> {
    final V value;
    volatile boolean referenced = true;
    Entry(V value) { this.value = value; }
  }

  private final int capacity;
  private final ConcurrentHashMap<KeyHandle, Entry<V>> map;
  private final AtomicBoolean evicting = new AtomicBoolean();

  KeyCache(int capacity) {
    if (capacity < 1) throw new IllegalArgumentException("cache capacity must be >= 1");
    this.capacity = capacity;
    this.map = new ConcurrentHashMap<>(Math.min(capacity, 1024) * 2);
  }

  V get(KeyHandle handle, Function<KeyHandle, V> loader) {
    Entry<V> e = map.get(handle);
    if (e != null) {
      if (!e.referenced) e.referenced = true;
      return e.value;
    }
    V value = loader.apply(handle);
    Entry<V> prev = map.putIfAbsent(handle, new Entry<>(value));
    if (prev != null) return prev.value;
    if (map.size() > capacity) evict();
    return value;
  }

  void remove(KeyHandle handle) { map.remove(handle); }

  void clear() { map.clear(); }

  int size() { return map.size(); }

  private void evict() {
    if (!evicting.compareAndSet(false, true)) return;
    try {
      int target = Math.max(capacity - capacity / 8, 0); // free ~1/8 so sweeps are rare
      for (int pass = 0; pass < 2 && map.size() > target; pass++) {
        Iterator<Map.Entry<KeyHandle, Entry<V>>> it = map.entrySet().iterator();
        while (it.hasNext() && map.size() > target) {
          Entry<V> e = it.next().getValue();
          if (e.referenced && pass == 0) {
            e.referenced = false;
          } else {
            it.remove();
          }
        }
      }
    } finally {
      evicting.set(false);
    }
  }
}

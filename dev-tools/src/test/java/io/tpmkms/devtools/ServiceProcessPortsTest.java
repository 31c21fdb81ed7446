package io.tpmkms.devtools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** freePorts hands out ports below the kernel's ephemeral range, where no outgoing connection takes them. */
class ServiceProcessPortsTest {

  @Test
  void ephemeralLow_isTheRangesFirstPort() throws Exception {
    Path range = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
    if (!Files.exists(range)) return; // not Linux: the default is used
    String first;
    try (var r = Files.newBufferedReader(range)) {
      first = r.readLine().trim().split("\\s+")[0];
    }
    assertEquals(Integer.parseInt(first), ServiceProcess.ephemeralLow());
    assertTrue(ServiceProcess.ephemeralLow() > 1024, "a port number, not a digit of one");
  }

  @Test
  void freePorts_areDistinct_andBelowTheEphemeralRange() throws Exception {
    int low = ServiceProcess.ephemeralLow();
    for (int round = 0; round < 5; round++) {
      int[] ports = ServiceProcess.freePorts(4);
      assertEquals(4, Arrays.stream(ports).distinct().count(), Arrays.toString(ports));
      if (low > 12_000) {
        for (int p : ports) assertTrue(p >= 10_000 && p < low, p + " is not below " + low);
      }
    }
  }
}

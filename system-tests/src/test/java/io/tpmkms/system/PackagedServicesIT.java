package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What a packaged service ships: nothing of dev-tools (the Keycloak launcher, ServiceProcess, and
 * the Jackson they bring), which the services take in test scope only. Looks at every jar under
 * the service's {@code quarkus-app/lib}, by name and by content, so a shaded or renamed copy is
 * caught too.
 */
class PackagedServicesIT {

  @ParameterizedTest
  @ValueSource(strings = {"key-service", "policy-service", "audit-service"})
  void packagedService_shipsNoDevTools(String service) throws IOException {
    Path lib = Path.of("..").toAbsolutePath().normalize().resolve(service).resolve("target/quarkus-app/lib");
    assertTrue(Files.isDirectory(lib), "not built: " + lib);
    List<String> found = new ArrayList<>();
    List<Path> jars;
    try (Stream<Path> walk = Files.walk(lib)) {
      jars = walk.filter(p -> p.toString().endsWith(".jar")).toList();
    }
    assertTrue(jars.stream().anyMatch(p -> p.getFileName().toString().contains("tpmkms-platform")),
        "the platform jar is where it should be: " + lib);
    for (Path jar : jars) {
      if (jar.getFileName().toString().contains("tpmkms-dev-tools")) found.add(jar.toString());
      try (JarFile j = new JarFile(jar.toFile())) {
        j.stream().filter(e -> e.getName().startsWith("io/tpmkms/devtools/"))
            .findFirst().ifPresent(e -> found.add(jar + "!" + e.getName()));
      }
    }
    assertEquals(List.of(), found, service + " ships dev tools");
  }
}

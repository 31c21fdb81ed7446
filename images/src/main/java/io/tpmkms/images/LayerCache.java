package io.tpmkms.images;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Jib's layer cache under the work directory keeps every layer it ever compressed: each build of
 * changed jars adds a dependency and an application layer per service (some 200 MiB). After a build,
 * layers that none of the images just written uses go.
 */
final class LayerCache {
  private static final ObjectMapper JSON = new ObjectMapper();

  private LayerCache() {}

  static void prune(Path cache, Collection<Path> tarballs) throws IOException {
    Set<String> kept = new HashSet<>();
    for (Path tarball : tarballs) kept.addAll(layerDigests(tarball));
    Path layers = cache.resolve("layers");
    Path selectors = cache.resolve("selectors");
    if (Files.isDirectory(layers)) {
      for (Path layer : list(layers)) {
        if (!kept.contains(layer.getFileName().toString())) JavaRuntime.deleteTree(layer);
      }
    }
    if (Files.isDirectory(selectors)) {
      for (Path selector : list(selectors)) {
        if (!kept.contains(Files.readString(selector, StandardCharsets.UTF_8).strip())) Files.delete(selector);
      }
    }
  }

  /** The hex digests of an OCI tarball's layers (its index, its manifest, the manifest's layers). */
  static Set<String> layerDigests(Path tarball) throws IOException {
    Map<String, byte[]> json = new HashMap<>();
    try (TarArchiveInputStream tar = new TarArchiveInputStream(Files.newInputStream(tarball))) {
      for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
        // the JSON documents are small; layer blobs are skipped unread
        if (e.isFile() && e.getSize() < 1_000_000) json.put(e.getName(), tar.readAllBytes());
      }
    }
    JsonNode index = JSON.readTree(json.get("index.json"));
    Set<String> digests = new HashSet<>();
    for (JsonNode descriptor : index.path("manifests")) {
      JsonNode manifest = JSON.readTree(json.get(blob(descriptor)));
      for (JsonNode layer : manifest.path("layers")) digests.add(blob(layer).substring("blobs/sha256/".length()));
    }
    return digests;
  }

  private static String blob(JsonNode descriptor) {
    return "blobs/sha256/" + descriptor.path("digest").asText().substring("sha256:".length());
  }

  private static List<Path> list(Path dir) throws IOException {
    try (Stream<Path> children = Files.list(dir)) {
      return children.toList();
    }
  }
}

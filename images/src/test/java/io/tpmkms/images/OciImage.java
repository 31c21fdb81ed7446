package io.tpmkms.images;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * An OCI image tarball (an OCI image layout in a tar), unpacked into a directory and read as the
 * image spec says: oci-layout, index.json, the manifest it names, the config and layer blobs.
 */
public final class OciImage {
  static final ObjectMapper JSON = new ObjectMapper();

  final String name;
  final Path tarball;
  final Path layout;
  final JsonNode index;
  final JsonNode manifest;
  public final JsonNode config;

  private OciImage(String name, Path tarball, Path layout) throws IOException {
    this.name = name;
    this.tarball = tarball;
    this.layout = layout;
    this.index = JSON.readTree(layout.resolve("index.json").toFile());
    assertEquals(1, index.path("manifests").size(), name + ": index.json names one manifest");
    this.manifest = JSON.readTree(blob(index.path("manifests").get(0).path("digest").asText()).toFile());
    this.config = JSON.readTree(blob(manifest.path("config").path("digest").asText()).toFile());
  }

  /** Unpacks {@code images/target/images/tpmkms-<name>.tar} under {@code workDir}. */
  public static OciImage open(String name, Path workDir) throws IOException {
    Path tarball = Images.tarball(name);
    assertTrue(Files.isRegularFile(tarball), tarball + " is missing: the images module's package phase makes it");
    Path layout = workDir.resolve(name + "-layout");
    Images.deleteTree(layout);
    Files.createDirectories(layout);
    try (TarArchiveInputStream tar = new TarArchiveInputStream(Files.newInputStream(tarball))) {
      for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
        Path target = layout.resolve(e.getName()).normalize();
        assertTrue(target.startsWith(layout), "entry outside the layout: " + e.getName());
        if (e.isDirectory()) {
          Files.createDirectories(target);
        } else {
          Files.createDirectories(target.getParent());
          Files.copy(tar, target);
        }
      }
    }
    return new OciImage(name, tarball, layout);
  }

  /** The file of a blob, by digest ({@code sha256:<hex>}). */
  Path blob(String digest) {
    assertTrue(digest.matches("sha256:[0-9a-f]{64}"), "not a sha256 digest: " + digest);
    return layout.resolve("blobs/sha256").resolve(digest.substring("sha256:".length()));
  }

  /** The layer blobs, bottom first. */
  public List<Path> layers() {
    List<Path> layers = new ArrayList<>();
    manifest.path("layers").forEach(l -> layers.add(blob(l.path("digest").asText())));
    return layers;
  }

  /** The layers' names (Jib records each layer's name as its history comment). */
  List<String> layerNames() {
    List<String> names = new ArrayList<>();
    config.path("history").forEach(h -> names.add(h.path("comment").asText()));
    return names;
  }

  /** Visits every entry of layer {@code i}; the stream reads that entry's content. */
  void forEachEntry(Path layer, EntryVisitor visitor) throws IOException {
    try (TarArchiveInputStream tar = new TarArchiveInputStream(new GZIPInputStream(Files.newInputStream(layer)))) {
      for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
        visitor.visit(e, tar);
      }
    }
  }

  /** Every entry of every layer, in order. */
  void forEachEntry(EntryVisitor visitor) throws IOException {
    for (Path layer : layers()) forEachEntry(layer, visitor);
  }

  @FunctionalInterface
  interface EntryVisitor {
    void visit(TarArchiveEntry entry, InputStream content) throws IOException;
  }

  static String sha256(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      return sha256(in);
    } catch (IOException ex) {
      throw new UncheckedIOException(ex);
    }
  }

  static String sha256(InputStream in) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException ex) {
      throw new IllegalStateException(ex);
    }
    // not closed here: the caller's stream (a tar entry's) goes on after this entry
    new DigestInputStream(in, digest).transferTo(OutputStream.nullOutputStream());
    return HexFormat.of().formatHex(digest.digest());
  }

  /** sha256 of the uncompressed layer (its diff_id). */
  static String uncompressedSha256(Path layer) throws IOException {
    try (InputStream in = new GZIPInputStream(Files.newInputStream(layer))) {
      return sha256(in);
    }
  }
}

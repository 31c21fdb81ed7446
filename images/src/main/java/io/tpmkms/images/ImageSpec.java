package io.tpmkms.images;

import com.google.cloud.tools.jib.api.buildplan.FileEntriesLayer;
import java.util.List;
import java.util.Map;

/**
 * One image: its name ({@code tpmkms/<name>}, file {@code tpmkms-<name>.tar}), its layers in
 * order, and its configuration.
 */
record ImageSpec(
    String name,
    String description,
    List<FileEntriesLayer> layers,
    List<String> entrypoint,
    String workingDirectory,
    Map<String, String> environment,
    List<Integer> ports) {

  String repository() {
    return "tpmkms/" + name;
  }

  String fileName() {
    return "tpmkms-" + name + ".tar";
  }
}

package io.tpmkms.testing;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** One scrape of a service's Prometheus endpoint ({@code /q/metrics}), and the samples in it. */
public final class PrometheusScrape {
  private final String text;

  private PrometheusScrape(String text) {
    this.text = text;
  }

  /** GETs {@code url} (the service's metrics endpoint); fails unless it answers 200 with the text format. */
  public static PrometheusScrape of(String url) throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) throw new AssertionError(url + " answered " + r.statusCode());
    return new PrometheusScrape(r.body());
  }

  public String text() {
    return text;
  }

  /**
   * The sum of the samples named {@code name} whose labels include {@code labels} (0 when there is
   * none: a counter not yet incremented is not exported).
   */
  public double value(String name, Map<String, String> labels) {
    double sum = 0;
    for (String line : text.split("\n")) {
      if (line.startsWith("#") || !(line.startsWith(name + "{") || line.startsWith(name + " "))) continue;
      int close = line.lastIndexOf('}');
      String labelText = close < 0 ? "" : line.substring(name.length() + 1, close);
      boolean all = labels.entrySet().stream().allMatch(e -> labelText.contains(e.getKey() + "=\"" + e.getValue() + "\""));
      if (!all) continue;
      String[] parts = line.substring(close < 0 ? name.length() : close + 1).trim().split(" ");
      sum += Double.parseDouble(parts[0]);
    }
    return sum;
  }

  /** The name of every sample in the scrape (with its {@code _total}, {@code _bucket}... suffix). */
  public java.util.Set<String> sampleNames() {
    java.util.Set<String> out = new java.util.TreeSet<>();
    for (String line : text.split("\n")) {
      if (line.isEmpty() || line.startsWith("#")) continue;
      int end = 0;
      while (end < line.length() && line.charAt(end) != '{' && line.charAt(end) != ' ') end++;
      out.add(line.substring(0, end));
    }
    return out;
  }

  /** Whether {@code name} is a sample here, or a histogram's or counter's family whose samples are. */
  public boolean exports(String name) {
    java.util.Set<String> samples = sampleNames();
    return samples.contains(name) || samples.contains(name + "_count") || samples.contains(name + "_total");
  }

  /** The names of every sample family in the scrape ({@code # TYPE} lines). */
  public List<String> families() {
    List<String> out = new ArrayList<>();
    for (String line : text.split("\n")) {
      if (line.startsWith("# TYPE ")) out.add(line.split(" ")[2]);
    }
    return out;
  }
}

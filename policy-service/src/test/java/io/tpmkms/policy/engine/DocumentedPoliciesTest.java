package io.tpmkms.policy.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Every Cedar example in docs/authorization.md validates against the schema, as an operator would save it. */
class DocumentedPoliciesTest {
  @Test
  void everyCedarExampleInTheDocs_validates() throws Exception {
    String doc = Files.readString(Path.of("..", "docs", "authorization.md"));
    Matcher m = Pattern.compile("```cedar\\n(.*?)```", Pattern.DOTALL).matcher(doc);
    List<String> failures = new ArrayList<>();
    int examples = 0;
    while (m.find()) {
      examples++;
      List<String> errors = PolicyEngineTest.ENGINE.validate(m.group(1));
      if (!errors.isEmpty()) failures.add(m.group(1) + " -> " + errors);
    }
    assertTrue(examples >= 4, "examples found: " + examples);
    assertEquals(List.of(), failures);
  }
}

package io.tpmkms.platform.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class RefusalBudgetTest {
  @Test
  void take_overTheBudget_skipsAndCounts_thenTheNextRecordedOneSaysHowMany() throws Exception {
    RefusalBudget b = new RefusalBudget(3);
    // align to the start of a second so all five fall into one
    long s = System.currentTimeMillis() / 1000;
    while (System.currentTimeMillis() / 1000 == s) Thread.sleep(5);
    assertEquals(0, b.take());
    assertEquals(0, b.take());
    assertEquals(0, b.take());
    assertEquals(-1, b.take(), "over the budget: not recorded");
    assertEquals(-1, b.take());
    Thread.sleep(1_050);
    assertEquals(2, b.take(), "the next recorded refusal says how many were not");
    assertEquals(0, b.take());
  }
}

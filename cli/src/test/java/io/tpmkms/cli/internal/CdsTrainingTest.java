package io.tpmkms.cli.internal;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The class-data sharing training run (ADR 0018) completes whole calls, not only refused connections. */
class CdsTrainingTest {

    @Test
    void everyCommandOfTheTrainingReachesTheLoopbackServer() throws Exception {
        int answered = CdsTraining.train();
        // 8 commands, at least one call each (a failed connection or a command that stops before its
        // call would leave the data path of a call out of the archive)
        assertTrue(answered >= 8, "calls answered: " + answered);
    }
}

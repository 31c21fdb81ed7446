package io.tpmkms.audit.chain;

import java.time.Instant;

/** A record as stored: the event, where it sits in the chain, and when it was made durable. */
public record StoredRecord(long sequence, Event event, Instant appendTime, byte[] previousHash, byte[] hash) {}

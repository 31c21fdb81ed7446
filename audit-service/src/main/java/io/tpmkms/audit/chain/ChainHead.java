package io.tpmkms.audit.chain;

/** The last record of the chain: its sequence (0 for an empty chain) and hash (32 zero bytes for an empty one). */
public record ChainHead(long sequence, byte[] hash) {
  public static ChainHead empty() { return new ChainHead(0, Canonical.genesis()); }
}

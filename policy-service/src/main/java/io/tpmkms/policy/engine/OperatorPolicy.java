package io.tpmkms.policy.engine;

/** The live version of an operator-written policy: exactly one Cedar permit or forbid, validated when saved. */
public record OperatorPolicy(String id, long version, String description, String text) {}

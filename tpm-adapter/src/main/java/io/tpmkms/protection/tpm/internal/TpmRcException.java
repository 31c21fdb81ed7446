package io.tpmkms.protection.tpm.internal;

/** A TPM command returned a response code other than TPM_RC_SUCCESS. */
public final class TpmRcException extends RuntimeException {
  private final int rc;
  private final String command;

  public TpmRcException(String command, int rc) {
    super(command + " failed: " + ResponseCodes.describe(rc));
    this.rc = rc;
    this.command = command;
  }

  /** The raw response code. */
  public int rc() { return rc; }

  /** The response code without the handle/parameter/session number. */
  public int base() { return ResponseCodes.base(rc); }

  public String command() { return command; }
}

package io.tpmkms.protection.tpm.internal;

/** The TPM could not be reached or did not answer in time; the connection is reopened for the next command. */
public final class TpmIoException extends RuntimeException {
  public TpmIoException(String message) { super(message); }
  public TpmIoException(String message, Throwable cause) { super(message, cause); }
}

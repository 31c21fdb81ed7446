package io.tpmkms.protection;

/**
 * Whether a key may ever leave its protection boundary, fixed when the key is created (as the
 * TPM's fixedTPM attribute is).
 *
 * <ul>
 *   <li>{@link #NON_EXPORTABLE}: TPM keys have fixedTPM and fixedParent SET, so the TPM itself
 *       refuses TPM2_Duplicate whatever the service does; software keys are never exported.
 *   <li>{@link #DUPLICABLE}: TPM keys have fixedTPM and fixedParent CLEAR and a policy whose DUP
 *       branch only the deployment's duplication authority can satisfy, per key and target
 *       (docs/adr/0025); the USER and ADMIN roles need a policy session too. Export goes to an
 *       attested TPM storage key only.
 * </ul>
 */
public enum ExportPolicy {
  NON_EXPORTABLE,
  DUPLICABLE
}

package io.tpmkms.protection.tpm;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * What a certified key's TPMT_PUBLIC says about how the key was made: its objectAttributes
 * (TPMA_OBJECT) and its authPolicy. TPMT_PUBLIC starts type(2) nameAlg(2) objectAttributes(4)
 * authPolicy(TPM2B). The certified name covers these bytes, so once the statement verifies they are
 * the TPM's word.
 *
 * <p>{@code sensitiveDataOrigin} set means the TPM generated the secret itself; clear means the
 * material came from outside (TPM2_Create with caller-supplied sensitive data, or TPM2_Import).
 * TPM2_Import requires {@code fixedTPM} and {@code fixedParent} clear, so an imported asymmetric key
 * is kept from duplication only by its policy.
 */
public record CertifiedObject(int attributes, byte[] authPolicy) {

    public static final int FIXED_TPM = 0x2;
    public static final int FIXED_PARENT = 0x10;
    public static final int SENSITIVE_DATA_ORIGIN = 0x20;
    public static final int USER_WITH_AUTH = 0x40;
    public static final int ADMIN_WITH_POLICY = 0x80;
    public static final int NO_DA = 0x400;
    public static final int RESTRICTED = 0x10000;
    public static final int DECRYPT = 0x20000;
    public static final int SIGN = 0x40000;

    /** @throws IllegalArgumentException if the bytes are too short to be a TPMT_PUBLIC */
    public static CertifiedObject parse(byte[] tpmtPublic) {
        try {
            ByteBuffer b = ByteBuffer.wrap(tpmtPublic);
            b.getShort(); // type
            b.getShort(); // nameAlg
            int attributes = b.getInt();
            byte[] policy = new byte[b.getShort() & 0xffff];
            b.get(policy);
            return new CertifiedObject(attributes, policy);
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("the certified public area is too short to be a TPMT_PUBLIC", e);
        }
    }

    public boolean has(int bit) {
        return (attributes & bit) == bit;
    }

    public boolean generatedInTpm() {
        return has(SENSITIVE_DATA_ORIGIN);
    }

    /** "generated in the TPM" or "imported (material came from outside the TPM)". */
    public String origin() {
        return generatedInTpm() ? "generated in the TPM" : "imported (material came from outside the TPM)";
    }

    /** The attributes that matter here, set ones by name, clear ones as {@code !name}. */
    public String attributeList() {
        List<String> out = new ArrayList<>();
        flag(out, FIXED_TPM, "fixedTPM", true);
        flag(out, FIXED_PARENT, "fixedParent", true);
        flag(out, SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin", true);
        flag(out, USER_WITH_AUTH, "userWithAuth", false);
        flag(out, ADMIN_WITH_POLICY, "adminWithPolicy", false);
        flag(out, NO_DA, "noDA", false);
        flag(out, RESTRICTED, "restricted", false);
        flag(out, DECRYPT, "decrypt", false);
        flag(out, SIGN, "sign", false);
        return String.join(" ", out);
    }

    private void flag(List<String> out, int bit, String name, boolean showClear) {
        if (has(bit)) {
            out.add(name);
        } else if (showClear) {
            out.add("!" + name);
        }
    }
}

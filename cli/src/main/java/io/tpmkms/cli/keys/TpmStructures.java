package io.tpmkms.cli.keys;

import java.io.ByteArrayOutputStream;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.List;

/**
 * The few TPM 2.0 structures {@code keys export} builds or reads, marshalled as the TPM and
 * tpm2-tools do (big-endian, TPM2B = uint16 size and the bytes): the TPMT_SIGNATURE of an ECDSA
 * signature given in DER, the parts of a TPMT_PUBLIC that say what kind of key it is, and the
 * PolicyCommandCode → PolicyAuthValue branch digests of a tpmkms DUPLICABLE key (ADR 0025).
 */
final class TpmStructures {

    static final int ALG_RSA = 0x0001;
    static final int ALG_KEYEDHASH = 0x0008;
    static final int ALG_ECC = 0x0023;
    static final int ALG_NULL = 0x0010;
    static final int ALG_SHA256 = 0x000B;
    static final int ALG_SHA384 = 0x000C;
    static final int ALG_SHA512 = 0x000D;
    static final int ALG_ECDSA = 0x0018;
    static final int ALG_RSASSA = 0x0014;
    static final int ALG_RSAPSS = 0x0016;
    static final int ALG_OAEP = 0x0017;
    static final int ALG_HMAC = 0x0005;
    static final int ECC_NIST_P256 = 0x0003;
    static final int ECC_NIST_P384 = 0x0004;

    static final int CC_HMAC = 0x0155;
    static final int CC_RSA_DECRYPT = 0x0159;
    static final int CC_SIGN = 0x015D;
    private static final int CC_POLICY_AUTH_VALUE = 0x016B;
    private static final int CC_POLICY_COMMAND_CODE = 0x016C;

    /** The branch an AEAD key's policy carries that no session reaches (ADR 0009, ADR 0025). */
    static final byte[] AEAD_POLICY_MARKER = sha256("tpmkms/tpm/aead-key/v1".getBytes(StandardCharsets.US_ASCII));

    private TpmStructures() {
    }

    /**
     * A DER ECDSA signature (SEQUENCE of INTEGER r, INTEGER s) as the TPMT_SIGNATURE tpm2-tools
     * writes ({@code tpm2_certify -s}): sigAlg ECDSA (0x0018), hash SHA-256 (0x000B), then r and s
     * as TPM2B_ECC_PARAMETER of 32 bytes each (P-256, left-padded with zeros).
     *
     * @throws IllegalArgumentException if it is not a DER ECDSA signature with P-256-sized r and s
     */
    static byte[] ecdsaP256Signature(byte[] der) {
        ByteBuffer b = ByteBuffer.wrap(der);
        try {
            if (b.get() != 0x30) {
                throw new IllegalArgumentException("not a DER ECDSA signature (no SEQUENCE)");
            }
            int length = derLength(b);
            if (length != b.remaining()) {
                throw new IllegalArgumentException("not a DER ECDSA signature (length " + length + ", "
                        + b.remaining() + " bytes follow)");
            }
            byte[] r = derUnsigned(b);
            byte[] s = derUnsigned(b);
            if (b.hasRemaining()) {
                throw new IllegalArgumentException("not a DER ECDSA signature (bytes after s)");
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(4 + 2 * 34);
            u16(out, ALG_ECDSA);
            u16(out, ALG_SHA256);
            tpm2b(out, r);
            tpm2b(out, s);
            return out.toByteArray();
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("not a DER ECDSA signature (truncated)");
        }
    }

    private static int derLength(ByteBuffer b) {
        int first = b.get() & 0xff;
        if (first < 0x80) {
            return first;
        }
        if (first == 0x81) {
            int n = b.get() & 0xff;
            if (n < 0x80) {
                throw new IllegalArgumentException("not DER (long form for a short length)");
            }
            return n;
        }
        throw new IllegalArgumentException("not a DER ECDSA signature (length form 0x" + Integer.toHexString(first) + ")");
    }

    /** A DER INTEGER that must be positive and fit P-256: its 32-byte big-endian value. */
    private static byte[] derUnsigned(ByteBuffer b) {
        if (b.get() != 0x02) {
            throw new IllegalArgumentException("not a DER ECDSA signature (no INTEGER)");
        }
        int length = derLength(b);
        if (length == 0 || length > b.remaining()) {
            throw new IllegalArgumentException("not a DER ECDSA signature (INTEGER length " + length + ")");
        }
        byte[] v = new byte[length];
        b.get(v);
        if ((v[0] & 0x80) != 0) {
            throw new IllegalArgumentException("not a DER ECDSA signature (negative INTEGER)");
        }
        int start = 0;
        while (start < v.length - 1 && v[start] == 0) {
            start++;
        }
        int size = v.length - start;
        if (size > 32) {
            throw new IllegalArgumentException("not a P-256 ECDSA signature (a " + size + "-byte INTEGER)");
        }
        byte[] out = new byte[32];
        System.arraycopy(v, start, out, 32 - size, size);
        return out;
    }

    /** {@code data} as a TPM2B: uint16 size, then the bytes. */
    static byte[] tpm2b(byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(data.length + 2);
        tpm2b(out, data);
        return out.toByteArray();
    }

    /** The TPMT_PUBLIC inside a TPM2B_PUBLIC (as tpm2-tools writes it), or the bytes as they are. */
    static byte[] tpmtPublic(byte[] publicArea) {
        if (publicArea.length >= 2 && ((publicArea[0] & 0xff) << 8 | publicArea[1] & 0xff) == publicArea.length - 2) {
            return Arrays.copyOfRange(publicArea, 2, publicArea.length);
        }
        return publicArea.clone();
    }

    /** The TPM name of a public area (SHA-256 name algorithm): 0x000B || SHA-256(TPMT_PUBLIC). */
    static byte[] name(byte[] publicArea) {
        byte[] h = sha256(tpmtPublic(publicArea));
        return ByteBuffer.allocate(2 + h.length).putShort((short) ALG_SHA256).put(h).array();
    }

    /**
     * What a TPMT_PUBLIC says about its key.
     *
     * @param type TPM_ALG_RSA, _ECC, _KEYEDHASH, ...
     * @param attributes TPMA_OBJECT
     * @param scheme the scheme's algorithm (TPM_ALG_NULL when none)
     * @param schemeHash the scheme's hash (TPM_ALG_NULL when none)
     * @param size ECC: the curve id; RSA: the key bits; else 0
     */
    record PublicArea(int type, int attributes, int scheme, int schemeHash, int size) {
    }

    /**
     * Reads the type, attributes and scheme of a public area (TPM2B_PUBLIC or TPMT_PUBLIC).
     *
     * @throws IllegalArgumentException if it is too short or of a type this does not read
     */
    static PublicArea readPublic(byte[] publicArea) {
        try {
            ByteBuffer b = ByteBuffer.wrap(tpmtPublic(publicArea));
            int type = b.getShort() & 0xffff;
            b.getShort(); // nameAlg
            int attributes = b.getInt();
            int policySize = b.getShort() & 0xffff;
            b.position(b.position() + policySize); // authPolicy
            if (type == ALG_KEYEDHASH) {
                int scheme = b.getShort() & 0xffff;
                int hash = scheme == ALG_NULL ? ALG_NULL : b.getShort() & 0xffff;
                return new PublicArea(type, attributes, scheme, hash, 0);
            }
            if (type != ALG_RSA && type != ALG_ECC) {
                throw new IllegalArgumentException("a public area of type 0x" + Integer.toHexString(type));
            }
            if ((b.getShort() & 0xffff) != ALG_NULL) { // symmetric: keyBits, mode
                b.getShort();
                b.getShort();
            }
            int scheme = b.getShort() & 0xffff;
            int hash = scheme == ALG_NULL ? ALG_NULL : b.getShort() & 0xffff;
            int size = b.getShort() & 0xffff; // ECC: curveID; RSA: keyBits
            return new PublicArea(type, attributes, scheme, hash, size);
        } catch (BufferUnderflowException | IllegalArgumentException e) {
            throw new IllegalArgumentException("not a TPM public area I can read: " + e.getMessage(), e);
        }
    }

    /** tpm2-tools' word for a hash algorithm ({@code -g}), or null. */
    static String hashWord(int alg) {
        return switch (alg) {
            case ALG_SHA256 -> "sha256";
            case ALG_SHA384 -> "sha384";
            case ALG_SHA512 -> "sha512";
            default -> null;
        };
    }

    /**
     * The USER branch of a DUPLICABLE key for command {@code cc}: PolicyCommandCode(cc) then
     * PolicyAuthValue, from a zero digest (TPM 2.0 Part 3, §23.11 and §23.18).
     */
    static byte[] authValueBranch(int cc) {
        byte[] d = new byte[32];
        d = sha256(ByteBuffer.allocate(32 + 8).put(d).putInt(CC_POLICY_COMMAND_CODE).putInt(cc).array());
        return sha256(ByteBuffer.allocate(32 + 4).put(d).putInt(CC_POLICY_AUTH_VALUE).array());
    }

    /** Whether one of {@code branches} is {@code digest}. */
    static boolean contains(List<byte[]> branches, byte[] digest) {
        for (byte[] b : branches) {
            if (MessageDigest.isEqual(b, digest)) {
                return true;
            }
        }
        return false;
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void u16(ByteArrayOutputStream out, int v) {
        out.write(v >>> 8);
        out.write(v);
    }

    private static void tpm2b(ByteArrayOutputStream out, byte[] data) {
        u16(out, data.length);
        out.write(data, 0, data.length);
    }
}

package io.tpmkms.cli.attestation;

import com.google.protobuf.ByteString;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.protection.tpm.KeyAttestationVerifier;
import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.util.Arrays;
import java.util.Base64;

/**
 * TPM2_Certify statements made in software, byte for byte as a TPM marshals them (TPMT_PUBLIC,
 * TPMS_ATTEST, ECDSA P-256/SHA-256 by an "attestation key" that is a JCA key pair). For the shapes
 * swtpm cannot produce through tpm-adapter on this branch: the public areas of imported objects
 * (sensitiveDataOrigin clear; fixedTPM and fixedParent clear for asymmetric keys). Everything
 * {@code attestation verify} checks still has to hold: it is the same verifier.
 */
public final class SyntheticAttestation {

    static final int FIXED_TPM = 0x2;
    static final int FIXED_PARENT = 0x10;
    static final int SENSITIVE_DATA_ORIGIN = 0x20;
    static final int USER_WITH_AUTH = 0x40;
    static final int ADMIN_WITH_POLICY = 0x80;
    static final int NO_DA = 0x400;
    static final int RESTRICTED = 0x10000;
    static final int SIGN = 0x40000;

    private final KeyPair ak;
    private final byte[] akPublic;

    public SyntheticAttestation() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        ak = g.generateKeyPair();
        ECPublicKey p = (ECPublicKey) ak.getPublic();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        u16(b, 0x0023); // TPM_ALG_ECC
        u16(b, 0x000B); // SHA-256
        u32(b, FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | RESTRICTED | SIGN);
        u16(b, 0); // authPolicy
        u16(b, 0x0010); // symmetric: NULL
        u16(b, 0x0018); // scheme: ECDSA
        u16(b, 0x000B); //   with SHA-256
        u16(b, 0x0003); // curve: NIST P-256
        u16(b, 0x0010); // kdf: NULL
        sized(b, unsigned(p.getW().getAffineX(), 32));
        sized(b, unsigned(p.getW().getAffineY(), 32));
        akPublic = b.toByteArray();
    }

    /**
     * TPMT_PUBLIC of an ECC P-256 storage key as tpm2-tools' and tpmkms's SRK template make it:
     * restricted decrypt, fixedTPM fixedParent sensitiveDataOrigin userWithAuth noDA, AES-128-CFB.
     */
    public static byte[] eccStoragePublic(ECPublicKey key) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        u16(b, 0x0023); // TPM_ALG_ECC
        u16(b, 0x000B);
        u32(b, FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | NO_DA | RESTRICTED | 0x20000);
        u16(b, 0); // authPolicy
        u16(b, 0x0006); // symmetric: AES
        u16(b, 128);
        u16(b, 0x0043); //   CFB
        u16(b, 0x0010); // scheme: NULL
        u16(b, 0x0003); // curve: NIST P-256
        u16(b, 0x0010); // kdf: NULL
        sized(b, unsigned(key.getW().getAffineX(), 32));
        sized(b, unsigned(key.getW().getAffineY(), 32));
        return b.toByteArray();
    }

    /** TPMT_PUBLIC of an HMAC-SHA256 keyedHash object with these attributes. */
    static byte[] hmacPublic(int attributes) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        u16(b, 0x0008); // TPM_ALG_KEYEDHASH
        u16(b, 0x000B);
        u32(b, attributes);
        u16(b, 0);
        u16(b, 0x0005); // scheme: HMAC
        u16(b, 0x000B);
        byte[] unique = new byte[32];
        new java.security.SecureRandom().nextBytes(unique);
        sized(b, unique);
        return b.toByteArray();
    }

    /** TPMT_PUBLIC of an RSASSA-SHA256 signing key with this public key, attributes and policy. */
    static byte[] rsaPublic(RSAPublicKey key, int attributes, byte[] authPolicy) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        u16(b, 0x0001); // TPM_ALG_RSA
        u16(b, 0x000B);
        u32(b, attributes);
        sized(b, authPolicy);
        u16(b, 0x0010); // symmetric: NULL
        u16(b, 0x0014); // scheme: RSASSA
        u16(b, 0x000B);
        u16(b, key.getModulus().bitLength());
        u32(b, 0); // exponent: default 65537
        sized(b, unsigned(key.getModulus(), key.getModulus().bitLength() / 8));
        return b.toByteArray();
    }

    /** The signed statement that the object with this public area is loaded in the "TPM". */
    public GetKeyAttestationResponse certify(byte[] certifiedPublic, byte[] nonce, int version) throws Exception {
        byte[] name = name(certifiedPublic);
        ByteArrayOutputStream a = new ByteArrayOutputStream();
        u32(a, 0xff544347);
        u16(a, 0x8017);
        sized(a, name(akPublic));
        sized(a, nonce);
        a.write(new byte[17]); // clockInfo
        a.write(new byte[8]); // firmwareVersion
        sized(a, name);
        sized(a, name); // qualifiedName (not checked)
        byte[] attest = a.toByteArray();
        Signature s = Signature.getInstance("SHA256withECDSA");
        s.initSign(ak.getPrivate());
        s.update(attest);
        byte[] akDer = KeyAttestationVerifier.spkiOf(akPublic);
        return GetKeyAttestationResponse.newBuilder().setVersion(version).setAttestation(
                io.tpmkms.proto.key.v1.KeyAttestation.newBuilder()
                        .setAttest(ByteString.copyFrom(attest))
                        .setSignature(ByteString.copyFrom(s.sign()))
                        .setAttestationKeyPem(pem(akDer))
                        .setAttestationKeyPublic(ByteString.copyFrom(akPublic))
                        .setAttestationKeyName(ByteString.copyFrom(name(akPublic)))
                        .setCertifiedName(ByteString.copyFrom(name))
                        .setCertifiedPublic(ByteString.copyFrom(certifiedPublic))).build();
    }

    public static String pem(byte[] spki) {
        return "-----BEGIN PUBLIC KEY-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(spki)
                + "\n-----END PUBLIC KEY-----\n";
    }

    public static byte[] name(byte[] tpmtPublic) throws Exception {
        byte[] h = MessageDigest.getInstance("SHA-256").digest(tpmtPublic);
        return ByteBuffer.allocate(2 + h.length).putShort((short) 0x000B).put(h).array();
    }

    private static byte[] unsigned(BigInteger v, int length) {
        byte[] raw = v.toByteArray();
        if (raw.length == length) {
            return raw;
        }
        if (raw.length > length) {
            return Arrays.copyOfRange(raw, raw.length - length, raw.length);
        }
        byte[] out = new byte[length];
        System.arraycopy(raw, 0, out, length - raw.length, raw.length);
        return out;
    }

    private static void u16(ByteArrayOutputStream b, int v) {
        b.write(v >>> 8);
        b.write(v);
    }

    private static void u32(ByteArrayOutputStream b, int v) {
        u16(b, v >>> 16);
        u16(b, v & 0xffff);
    }

    private static void sized(ByteArrayOutputStream b, byte[] data) {
        u16(b, data.length);
        b.write(data, 0, data.length);
    }
}

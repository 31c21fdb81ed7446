package io.tpmkms.cli.attestation;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.KeyAttestation;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/**
 * The attestation file: a GetKeyAttestationResponse in the protobuf JSON mapping (bytes in
 * base64), as {@code attestation get} writes it. A bare KeyAttestation object is read too.
 */
public final class AttestationFile {

    private AttestationFile() {
    }

    public static String write(GetKeyAttestationResponse response) throws InvalidProtocolBufferException {
        return Session.json(response) + "\n";
    }

    /** @throws IllegalArgumentException if the text is not an attestation file */
    static GetKeyAttestationResponse read(byte[] text) {
        String json = new String(text, StandardCharsets.UTF_8);
        try {
            GetKeyAttestationResponse.Builder b = GetKeyAttestationResponse.newBuilder();
            JsonFormat.parser().merge(json, b);
            if (b.hasAttestation()) {
                return b.build();
            }
        } catch (InvalidProtocolBufferException e) {
            // perhaps a bare KeyAttestation
        }
        try {
            KeyAttestation.Builder a = KeyAttestation.newBuilder();
            JsonFormat.parser().merge(json, a);
            if (a.getAttest().isEmpty()) {
                throw new IllegalArgumentException("not an attestation file: no 'attestation.attest'");
            }
            return GetKeyAttestationResponse.newBuilder().setAttestation(a).build();
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalArgumentException("not an attestation file (GetKeyAttestationResponse as JSON): "
                    + e.getMessage(), e);
        }
    }

    /** The adapter's record of the wire message; the AK's PEM becomes DER. */
    public static io.tpmkms.protection.KeyAttestation toStatement(KeyAttestation a) {
        byte[] ek = a.getEkCertificate().isEmpty() ? null : a.getEkCertificate().toByteArray();
        return new io.tpmkms.protection.KeyAttestation(a.getAttest().toByteArray(), a.getSignature().toByteArray(),
                pemToDer(a.getAttestationKeyPem()), a.getAttestationKeyPublic().toByteArray(),
                a.getAttestationKeyName().toByteArray(), ek, a.getCertifiedName().toByteArray(),
                a.getCertifiedPublic().toByteArray());
    }

    /**
     * DER of the first PEM block (any label), or an empty array when there is none.
     *
     * @throws IllegalArgumentException if the base64 is broken
     */
    public static byte[] pemToDer(String pem) {
        int begin = pem.indexOf("-----BEGIN ");
        if (begin < 0) {
            return new byte[0];
        }
        int bodyStart = pem.indexOf('\n', begin);
        int end = pem.indexOf("-----END ", begin);
        if (bodyStart < 0 || end < bodyStart) {
            throw new IllegalArgumentException("malformed PEM");
        }
        return Base64.getMimeDecoder().decode(pem.substring(bodyStart + 1, end));
    }

    /**
     * A public key file: PEM SubjectPublicKeyInfo ({@code tpmkms public-key}, openssl) or DER.
     *
     * @return the DER SubjectPublicKeyInfo
     * @throws IllegalArgumentException if it is not a public key
     */
    public static byte[] publicKeyDer(byte[] file) {
        String text = new String(file, StandardCharsets.US_ASCII);
        byte[] der = text.contains("-----BEGIN ") ? pemToDer(text) : file;
        for (String alg : new String[] {"EC", "RSA"}) {
            try {
                return KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(der)).getEncoded();
            } catch (java.security.GeneralSecurityException e) {
                // try the next
            }
        }
        throw new IllegalArgumentException("not an EC or RSA public key (PEM or DER SubjectPublicKeyInfo)");
    }
}

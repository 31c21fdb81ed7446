package io.tpmkms.cli.imports;

import io.tpmkms.proto.key.v1.Algorithm;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;

/**
 * Reads plaintext key material for {@code keys import --key-file} in the form ImportKeyVersion
 * takes: 32 raw bytes for {@code aes-256-gcm} and {@code hmac-sha256}; PKCS#8 PrivateKeyInfo DER
 * for EC and RSA keys, given as DER or as PEM {@code PRIVATE KEY} (converted to DER here). Legacy
 * PEM ({@code EC PRIVATE KEY}, {@code RSA PRIVATE KEY}) and encrypted PKCS#8 are refused with the
 * openssl command that converts them.
 *
 * <p>The material is handled as bytes only, never as a String (which could not be zeroed); every
 * intermediate array is zeroed here, and the caller zeroes the array returned. Whether the material
 * matches the algorithm (curve, RSA size, trailing bytes) is the service's check (KEY_MATERIAL_INVALID).
 */
final class KeyMaterialFile {

    /** The file is not key material the CLI can send; the message says why and what to do. */
    static final class RefusedException extends Exception {
        RefusedException(String message) {
            super(message);
        }
    }

    private static final byte[] BEGIN = ascii("-----BEGIN ");
    private static final byte[] END = ascii("-----END ");
    private static final byte[] DASHES = ascii("-----");

    private KeyMaterialFile() {
    }

    static boolean symmetric(Algorithm algorithm) {
        return algorithm == Algorithm.AES_256_GCM || algorithm == Algorithm.HMAC_SHA256;
    }

    /**
     * @param file the file's bytes; zeroed by this method
     * @return the material to wrap; the caller zeroes it
     * @throws RefusedException when the file is not in a form the CLI sends
     */
    static byte[] read(String name, byte[] file, Algorithm algorithm) throws RefusedException {
        try {
            return symmetric(algorithm) ? raw(name, file, algorithm) : pkcs8(name, file);
        } finally {
            Arrays.fill(file, (byte) 0);
        }
    }

    private static byte[] raw(String name, byte[] file, Algorithm algorithm) throws RefusedException {
        if (file.length == 32) {
            return file.clone();
        }
        String hint = looksLikeHex(file) ? " It looks like hex: convert it with 'xxd -r -p " + name + " > key.bin'." : "";
        throw new RefusedException(name + " is " + file.length + " bytes; " + algorithm.name()
                + " material is exactly 32 raw bytes." + hint);
    }

    private static byte[] pkcs8(String name, byte[] file) throws RefusedException {
        int begin = indexOf(file, BEGIN, 0);
        if (begin < 0) {
            if (file.length < 2 || file[0] != 0x30) {
                throw new RefusedException(name + " is neither PEM nor DER: give a PKCS#8 private key "
                        + "(PEM 'PRIVATE KEY' or DER)");
            }
            return file.clone();
        }
        int labelStart = begin + BEGIN.length;
        int labelEnd = indexOf(file, DASHES, labelStart);
        if (labelEnd < 0) {
            throw new RefusedException(name + ": malformed PEM header");
        }
        String label = new String(file, labelStart, labelEnd - labelStart, StandardCharsets.US_ASCII);
        switch (label) {
            case "PRIVATE KEY" -> {
            }
            case "EC PRIVATE KEY", "RSA PRIVATE KEY" -> throw new RefusedException(name + " is a legacy '" + label
                    + "' PEM (SEC 1 / PKCS#1); the service takes PKCS#8. Convert it: "
                    + "openssl pkcs8 -topk8 -nocrypt -in " + name + " -out key.pk8.pem");
            case "ENCRYPTED PRIVATE KEY" -> throw new RefusedException(name + " is an encrypted PKCS#8 key; decrypt it "
                    + "first: openssl pkcs8 -in " + name + " -out key.pk8.pem (and delete that file after the import)");
            default -> throw new RefusedException(name + " holds a '" + label + "' PEM block, not a 'PRIVATE KEY' "
                    + "(PKCS#8)");
        }
        int bodyStart = labelEnd + DASHES.length;
        int end = indexOf(file, END, bodyStart);
        if (end < 0) {
            throw new RefusedException(name + ": PEM block without its END line");
        }
        byte[] body = Arrays.copyOfRange(file, bodyStart, end);
        try {
            return Base64.getMimeDecoder().decode(body);
        } catch (IllegalArgumentException e) {
            throw new RefusedException(name + ": the PEM body is not valid base64");
        } finally {
            Arrays.fill(body, (byte) 0);
        }
    }

    private static boolean looksLikeHex(byte[] file) {
        int digits = 0;
        for (byte b : file) {
            if (Character.digit(b, 16) >= 0) {
                digits++;
            } else if (b != '\n' && b != '\r') {
                return false;
            }
        }
        return digits == 64;
    }

    private static int indexOf(byte[] data, byte[] what, int from) {
        outer:
        for (int i = from; i <= data.length - what.length; i++) {
            for (int j = 0; j < what.length; j++) {
                if (data[i + j] != what[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}

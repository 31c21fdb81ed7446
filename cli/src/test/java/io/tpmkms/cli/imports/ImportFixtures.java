package io.tpmkms.cli.imports;

import com.google.protobuf.Timestamp;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.protection.ImportWrapping;
import java.nio.charset.StandardCharsets;
import java.security.PrivateKey;
import java.security.spec.MGF1ParameterSpec;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

/** Import jobs as the service returns them, and the service side of the wrapping (JCA only). */
final class ImportFixtures {

    private ImportFixtures() {
    }

    static ImportJob job(String name, ImportJobState state, ProtectionLevel protection, ImportMethod method,
                         byte[] publicKeyDer) {
        ImportJob.Builder b = ImportJob.newBuilder()
                .setName(name)
                .setNamespace(name.substring(0, name.indexOf('/')))
                .setJobId(name.substring(name.indexOf('/') + 1))
                .setState(state)
                .setProtectionLevel(protection)
                .setImportMethod(method)
                .setCreateTime(Timestamp.newBuilder().setSeconds(1_900_000_000L))
                .setExpireTime(Timestamp.newBuilder().setSeconds(1_900_259_200L));
        if (publicKeyDer != null) {
            b.setPublicKeyPem(pem("PUBLIC KEY", publicKeyDer)).setGenerateTime(Timestamp.newBuilder().setSeconds(1_900_000_002L));
        }
        return b.build();
    }

    static String pem(String label, byte[] der) {
        return "-----BEGIN " + label + "-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
                + "\n-----END " + label + "-----\n";
    }

    /** The service's side: RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) with the job key, then AES-KWP. */
    static byte[] unwrap(ImportMethod method, PrivateKey jobKey, byte[] wrapped) throws Exception {
        ImportWrapping.Method m = ImportWrapping.Method.valueOf(method.name());
        ImportWrapping.Parts parts = ImportWrapping.split(m, wrapped);
        Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
        oaep.init(Cipher.DECRYPT_MODE, jobKey, new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256,
                PSource.PSpecified.DEFAULT));
        byte[] first = oaep.doFinal(parts.oaep());
        return m.aesKeyWrap() ? ImportWrapping.unwrapKwp(first, parts.kwp()) : first;
    }
}

package io.tpmkms.cli.attestation;

import io.tpmkms.protection.tpm.AttestationVerification;
import io.tpmkms.protection.tpm.CertifiedObject;
import com.google.protobuf.ByteString;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.protection.tpm.AttestationVerification.Check;
import io.tpmkms.proto.key.v1.GetKeyAttestationRequest;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.GetKeyVersionRequest;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code tpmkms attestation ...}: TPM key attestations (TPM2_Certify statements), fetched and verified. */
@Command(name = "attestation", description = "Fetch a TPM key's attestation and verify it offline.")
public final class AttestationCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            AttestationCommand.Get.class,
            AttestationCommand.Verify.class,
    };


    /** The service takes at most this many nonce bytes (TPM2_Certify qualifyingData). */
    static final int MAX_NONCE = 32;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    static byte[] randomNonce() {
        byte[] n = new byte[MAX_NONCE];
        new SecureRandom().nextBytes(n);
        return n;
    }

    static byte[] parseNonce(String hex, CommandSpec spec) {
        String h = hex.strip();
        if (h.startsWith("0x") || h.startsWith("0X")) {
            h = h.substring(2);
        }
        byte[] nonce;
        try {
            nonce = HexFormat.of().parseHex(h);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--nonce must be hex (an even number of 0-9a-f): " + hex);
        }
        if (nonce.length > MAX_NONCE) {
            throw new ParameterException(spec.commandLine(), "--nonce is " + nonce.length + " bytes; at most " + MAX_NONCE);
        }
        return nonce;
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "get", description = {
            "Get a fresh TPM attestation of a key version (GetKeyAttestation) and write it as JSON.",
            "Only TPM keys can be attested. With --random-nonce, the nonce is printed as 'nonce: HEX' "
                    + "(on stdout with --out FILE, on stderr when the JSON goes to stdout)."})
    public static final class Get extends KmsCommand {
        // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
        boolean help;

        @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of a TPM key.")
        String key;

        @Option(names = "--version", paramLabel = "N", description = "Version. Default: the primary.")
        int version;

        @ArgGroup(exclusive = true)
        NonceChoice nonce;

        static final class NonceChoice {
            @Option(names = "--nonce", paramLabel = "HEX",
                    description = "Your challenge, at most 32 bytes in hex; the TPM signs it into the statement.")
            String hex;

            @Option(names = "--random-nonce", description = "Make a random 32-byte nonce here and print it.")
            boolean random;
        }

        @Option(names = "--out", paramLabel = "FILE", defaultValue = "-",
                description = "Where to write the JSON; - for stdout (default).")
        String out;

        @Override
        protected int run(Session s) throws Exception {
            byte[] n = nonce == null ? new byte[0]
                    : nonce.random ? randomNonce() : parseNonce(nonce.hex, spec);
            GetKeyAttestationResponse response = s.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder()
                    .setKey(key).setVersion(version).setNonce(ByteString.copyFrom(n)).build());
            s.write(out, AttestationFile.write(response).getBytes(StandardCharsets.UTF_8));
            if (nonce != null && nonce.random) {
                (Session.isStdio(out) ? s.err() : s.out()).println("nonce: " + HexFormat.of().formatHex(n));
            }
            if (!Session.isStdio(out) && !s.json()) {
                s.out().println("attestation of " + key + " version " + Integer.toUnsignedString(response.getVersion())
                        + " written to " + out);
            }
            return ExitCodes.OK;
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "verify", description = {
            "Verify a key attestation: offline from a file (--in), or fetch it for KEY and verify it.",
            "Checks the attestation key's signature, the nonce, that the certified name is the hash of the "
                    + "key's public area, and that its attributes say fixedTPM fixedParent sensitiveDataOrigin "
                    + "(the key was made in the TPM and cannot leave it); optionally the public key and the EK "
                    + "certificate's issuer. Exit 0 when every check passes, 1 otherwise (the failed check on stderr).",
            "With KEY, the version's origin is fetched too (GetKeyVersion): for an imported version the TPM must say "
                    + "sensitiveDataOrigin clear, and the output shows which of fixedTPM/fixedParent it has "
                    + "(imported asymmetric keys have neither: only their policy keeps them from duplication).",
            "Not checked: that the attestation key belongs to the TPM of the EK certificate (credential activation)."})
    public static final class Verify extends KmsCommand {
        // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
        boolean help;

        @Parameters(paramLabel = "KEY", arity = "0..1",
                description = "Fetch the attestation of this key (online). Without it, --in is required.")
        String key;

        @Option(names = "--in", paramLabel = "FILE",
                description = "Attestation JSON as 'attestation get' wrote it (offline: no key service); - for stdin.")
        String in;

        @Option(names = "--nonce", paramLabel = "HEX",
                description = "The nonce the attestation was requested with. Required with --in; with KEY, "
                        + "default a fresh random one.")
        String nonceHex;

        @Option(names = "--version", paramLabel = "N", description = "With KEY: the version. Default: the primary.")
        int version;

        @Option(names = "--public-key", paramLabel = "PEMFILE",
                description = "Also check that the certified key is this public key (PEM or DER SubjectPublicKeyInfo). "
                        + "With KEY, an asymmetric key's public key is fetched with GetPublicKey when this is not given.")
        Path publicKey;

        @Option(names = "--ek-ca", paramLabel = "PEMFILE",
                description = "Manufacturer CA certificates (PEM): check the EK certificate's chain to one of them "
                        + "(validity, key usage, TCG EK OIDs) and, with KEY, prove by credential activation that the "
                        + "attestation key is in the TPM of that EK.")
        Path ekCa;

        @Override
        protected boolean offline() {
            return key == null;
        }

        @Override
        protected int run(Session s) throws Exception {
            if ((key == null) == (in == null)) {
                throw usage(key == null ? "give KEY (fetch and verify) or --in FILE (verify a saved attestation)"
                        : "KEY and --in cannot be combined");
            }
            if (in != null && nonceHex == null) {
                throw usage("--nonce is required with --in: the nonce the attestation was requested with");
            }
            byte[] expectedSpki = publicKey == null ? null : readPublicKey(publicKey);
            List<X509Certificate> cas = ekCa == null ? null : readCertificates(ekCa);

            byte[] nonce;
            GetKeyAttestationResponse response;
            KeyVersion keyVersion = null;
            if (key == null) {
                nonce = parseNonce(nonceHex, spec);
                try {
                    response = AttestationFile.read(s.read(in));
                } catch (IllegalArgumentException e) {
                    throw usage(in + ": " + e.getMessage());
                }
            } else {
                nonce = nonceHex == null ? randomNonce() : parseNonce(nonceHex, spec);
                response = s.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder()
                        .setKey(key).setVersion(version).setNonce(ByteString.copyFrom(nonce)).build());
                keyVersion = s.keys().getKeyVersion(GetKeyVersionRequest.newBuilder()
                        .setKey(key).setVersion(response.getVersion()).build()).getVersion();
                if (expectedSpki == null && isAsymmetric(s)) {
                    String pem = s.keys().getPublicKey(GetPublicKeyRequest.newBuilder()
                            .setKey(key).setVersion(response.getVersion()).build()).getPem();
                    expectedSpki = AttestationFile.pemToDer(pem);
                }
            }

            io.tpmkms.protection.KeyAttestation statement = AttestationFile.toStatement(response.getAttestation());
            AttestationVerification.Claim claim = keyVersion != null && keyVersion.getImported()
                    ? AttestationVerification.Claim.IMPORTED : AttestationVerification.Claim.GENERATED;
            AttestationVerification v = AttestationVerification.run(statement, nonce, expectedSpki, cas, claim);
            if (response.hasPlatformBinding()) {
                v.checks.add(platformBindingCheck(statement, response.getPlatformBinding()));
            }
            akBound = false;
            if (cas != null && statement.ekCertificateDer() != null && statement.ekCertificateDer().length > 0) {
                byte[] ekPublic = null;
                try {
                    X509Certificate ek = (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                            .generateCertificate(new java.io.ByteArrayInputStream(statement.ekCertificateDer()));
                    ekPublic = io.tpmkms.protection.tpm.attest.EkTemplates.forCertifiedKey(ek.getPublicKey());
                    var chain = new io.tpmkms.protection.tpm.attest.EkCertificateValidator(cas)
                            .validate(statement.ekCertificateDer(), List.of(), ekPublic);
                    v.checks.add(new Check(EK_CHAIN, AttestationVerification.Outcome.OK, null));
                    ekModel = chain.manufacturer() == null ? null
                            : chain.manufacturer() + " " + chain.model() + " " + chain.version();
                } catch (io.tpmkms.protection.tpm.attest.EkCertificateValidator.EkCertificateException e) {
                    v.checks.add(new Check(EK_CHAIN, AttestationVerification.Outcome.FAILED, e.reason() + ": " + e.getMessage()));
                    ekPublic = null;
                } catch (java.security.cert.CertificateException | IllegalArgumentException e) {
                    v.checks.add(new Check(EK_CHAIN, AttestationVerification.Outcome.FAILED, e.getMessage()));
                    ekPublic = null;
                }
                if (key != null && ekPublic != null) {
                    v.checks.add(activationCheck(s, ekPublic, statement.akName()));
                    akBound = v.passed();
                }
            }
            if (s.json()) {
                s.out().println(json(v, statement, response.getVersion(), keyVersion));
            } else {
                print(s, v, statement, response.getVersion(), keyVersion);
            }
            for (Check failed : v.failures()) {
                s.err().println("attestation verification FAILED: " + failed.name() + ": " + failed.detail());
            }
            return v.passed() ? ExitCodes.OK : ExitCodes.FAILED;
        }

        static final String EK_CHAIN = "EK certificate chains to a given manufacturer CA (validity, key usage, TCG EK OIDs)";
        static final String ACTIVATION = "attestation key bound to the EK by credential activation (a fresh secret "
                + "for this EK and AK name came back from the TPM)";
        private boolean akBound;
        private String ekModel;

        /**
         * TPM2_MakeCredential here, for the certified EK and the statement's AK name, with a fresh random
         * secret; the service's TPM answers it only if it holds both keys (ADR 0037).
         */
        private static Check activationCheck(Session s, byte[] ekPublic, byte[] akName) {
            byte[] secret = randomNonce();
            var credential = io.tpmkms.protection.tpm.attest.CredentialActivation.make(ekPublic, akName, secret);
            boolean ecc = (ekPublic[0] & 0xff) == 0 && (ekPublic[1] & 0xff) == 0x23;
            try {
                byte[] back = s.keys().activateAttestationCredential(
                        io.tpmkms.proto.key.v1.ActivateAttestationCredentialRequest.newBuilder()
                                .setEkType(ecc ? io.tpmkms.proto.key.v1.EndorsementKeyType.EK_ECC_P256
                                        : io.tpmkms.proto.key.v1.EndorsementKeyType.EK_RSA_2048)
                                .setCredential(ByteString.copyFrom(credential.toTpm2ToolsFile())).build())
                        .getSecret().toByteArray();
                return java.security.MessageDigest.isEqual(back, secret)
                        ? new Check(ACTIVATION, AttestationVerification.Outcome.OK, null)
                        : new Check(ACTIVATION, AttestationVerification.Outcome.FAILED, "the service answered another secret");
            } catch (io.grpc.StatusRuntimeException e) {
                return new Check(ACTIVATION, AttestationVerification.Outcome.FAILED,
                        e.getStatus().getCode() + ": " + e.getStatus().getDescription());
            }
        }

        /**
         * The platform binding the service reports, recomputed offline: the certified public area's
         * authPolicy must be the policy that asserts exactly these PCR values before every use (ADR 0036).
         */
        static Check platformBindingCheck(io.tpmkms.protection.KeyAttestation att,
                                          io.tpmkms.proto.key.v1.PlatformBinding b) {
            String name = "platform binding " + io.tpmkms.cli.format.Views.platformBinding(b)
                    + " = the certified key's policy (TPM2_PolicyPCR before every use)";
            io.tpmkms.protection.PlatformBinding binding;
            try {
                binding = new io.tpmkms.protection.PlatformBinding(b.getPcrsList().stream().mapToInt(Integer::intValue).toArray(),
                        b.getValuesList().stream().map(ByteString::toByteArray).toArray(byte[][]::new));
            } catch (IllegalArgumentException e) {
                return new Check(name, AttestationVerification.Outcome.FAILED, "malformed binding: " + e.getMessage());
            }
            for (io.tpmkms.protection.KeyAlgorithm alg : io.tpmkms.protection.KeyAlgorithm.values()) {
                if (io.tpmkms.protection.tpm.KeyAttestationVerifier.boundTo(att.certifiedTpmPublic(), alg, binding)) {
                    return new Check(name, AttestationVerification.Outcome.OK, null);
                }
            }
            return new Check(name, AttestationVerification.Outcome.FAILED,
                    "the certified authPolicy is not the policy of this binding");
        }

        private boolean isAsymmetric(Session s) {
            KeyPurpose p = s.keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey().getPurpose();
            return p == KeyPurpose.ASYMMETRIC_SIGN || p == KeyPurpose.ASYMMETRIC_DECRYPT;
        }

        private byte[] readPublicKey(Path file) throws IOException {
            try {
                return AttestationFile.publicKeyDer(Files.readAllBytes(file));
            } catch (IllegalArgumentException e) {
                throw usage("--public-key " + file + ": " + e.getMessage());
            }
        }

        private List<X509Certificate> readCertificates(Path file) throws IOException {
            try {
                return ImportJobAttestation.readCertificates(Files.readAllBytes(file));
            } catch (IllegalArgumentException e) {
                throw usage("--ek-ca " + file + ": " + e.getMessage());
            }
        }

        private void print(Session s, AttestationVerification v, io.tpmkms.protection.KeyAttestation att, int version,
                           KeyVersion keyVersion) {
            for (Check c : v.checks) {
                s.out().println(c.line());
            }
            if (keyVersion != null) {
                s.out().println("key version: " + (keyVersion.getImported()
                        ? "imported" + (keyVersion.getImportJob().isEmpty() ? "" : " with import job " + keyVersion.getImportJob())
                                + (keyVersion.hasImportTime() ? " at " + TimeText.show(keyVersion.getImportTime()) : "")
                        : "generated by the service (not imported)"));
            }
            if (v.certified != null) {
                s.out().println("origin (TPM attributes): " + v.certified.origin());
                s.out().println("certified attributes: " + v.certified.attributeList());
            }
            if (v.passed()) {
                String what = key == null ? "the key" : key + " version " + Integer.toUnsignedString(version);
                String name = " (TPM name " + AttestationVerification.hex(att.certifiedName()) + ")";
                if (v.certified == null || v.certified.generatedInTpm()) {
                    s.out().println("verified: " + what + name + " was generated in a TPM and cannot leave it");
                } else if (v.certified.has(CertifiedObject.FIXED_TPM) && v.certified.has(CertifiedObject.FIXED_PARENT)) {
                    s.out().println("verified: " + what + name + " is an object in a TPM that cannot leave it "
                            + "(fixedTPM fixedParent); its material was imported: it came from outside the TPM");
                } else {
                    s.out().println("verified: " + what + name + " is an object in a TPM; its material was imported "
                            + "(it came from outside the TPM), and fixedTPM/fixedParent are clear (TPM2_Import requires "
                            + "it), so only its policy (authPolicy " + AttestationVerification.hex(v.certified.authPolicy())
                            + ") keeps it from being duplicated");
                }
                s.out().println("attestation key name: " + AttestationVerification.hex(att.akName()));
            }
            if (v.ekSubject != null) {
                s.out().println("EK certificate: subject '" + v.ekSubject + "', issuer '" + v.ekIssuer + "'"
                        + (ekModel == null ? "" : ", TPM " + ekModel));
            }
            if (akBound) {
                s.out().println("chain: key -> attestation key -> EK (credential activation) -> manufacturer CA");
            } else {
                s.out().println("note: " + AttestationVerification.TRUST_NOTE
                        + (key == null ? " (verify online, KEY with --ek-ca, to prove it)" : ""));
            }
        }

        private String json(AttestationVerification v, io.tpmkms.protection.KeyAttestation att, int version,
                            KeyVersion keyVersion) {
            StringBuilder b = new StringBuilder("{\n");
            b.append("  \"verified\": ").append(v.passed()).append(",\n");
            if (key != null) {
                b.append("  \"key\": ").append(quote(key)).append(",\n");
                b.append("  \"version\": ").append(Integer.toUnsignedString(version)).append(",\n");
            }
            b.append("  \"checks\": [");
            for (int i = 0; i < v.checks.size(); i++) {
                Check c = v.checks.get(i);
                b.append(i == 0 ? "\n" : ",\n").append("    {\"check\": ").append(quote(c.name()))
                        .append(", \"result\": ").append(quote(c.outcome().name().toLowerCase(java.util.Locale.ROOT)));
                if (c.detail() != null) {
                    b.append(", \"detail\": ").append(quote(c.detail()));
                }
                b.append('}');
            }
            b.append("\n  ],\n");
            if (v.certified != null) {
                b.append("  \"origin\": ").append(quote(v.certified.generatedInTpm() ? "generated" : "imported")).append(",\n");
                b.append("  \"certifiedAttributes\": ").append(quote(v.certified.attributeList())).append(",\n");
            }
            if (keyVersion != null) {
                b.append("  \"imported\": ").append(keyVersion.getImported()).append(",\n");
                if (!keyVersion.getImportJob().isEmpty()) {
                    b.append("  \"importJob\": ").append(quote(keyVersion.getImportJob())).append(",\n");
                }
            }
            b.append("  \"certifiedName\": ").append(quote(AttestationVerification.hex(att.certifiedName()))).append(",\n");
            b.append("  \"attestationKeyName\": ").append(quote(AttestationVerification.hex(att.akName()))).append(",\n");
            if (v.ekSubject != null) {
                b.append("  \"ekCertificate\": {\"subject\": ").append(quote(v.ekSubject))
                        .append(", \"issuer\": ").append(quote(v.ekIssuer)).append("},\n");
            }
            b.append("  \"akBoundToEk\": ").append(akBound).append(akBound ? "\n}" : ",\n");
            if (!akBound) {
                b.append("  \"note\": ").append(quote(AttestationVerification.TRUST_NOTE)).append("\n}");
            }
            return b.toString();
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}

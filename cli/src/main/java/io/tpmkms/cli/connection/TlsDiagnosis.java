package io.tpmkms.cli.connection;

import io.grpc.StatusRuntimeException;
import io.tpmkms.tls.ClientTls;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Why a connection to a service failed, in words, when the reason is transport security: a
 * plaintext client at a TLS port and the reverse, a server certificate the CA does not sign, that
 * has expired or names another host, a client certificate missing or refused. {@code null} when
 * the failure is something else (the service is down, say), which is then reported as usual.
 */
public final class TlsDiagnosis {
    private TlsDiagnosis() {}

    /**
     * @param what    "the key service at localhost:9090"
     * @param tls     how the connection was made
     */
    public static String explain(StatusRuntimeException e, String what, ClientTls tls, String address) {
        String chain = causes(e);
        if (tls.tls()) {
            if (has(chain, "Unrecognized SSL message", "plaintext connection", "not an SSL/TLS record",
                    "Unsupported or unrecognized SSL message")) {
                return what + " does not speak TLS (a plaintext port?): leave out --ca-file/TPMKMS_CA_FILE, "
                        + "or add --plaintext";
            }
            if (has(chain, "CertificateExpiredException", "validity check failed", "certificate_expired")) {
                return what + " presented an expired certificate";
            }
            if (has(chain, "PKIX path", "unable to find valid certification path", "PKIX path building failed")) {
                return what + " presented a certificate that " + tls.caFile().map(p -> "the CA in " + p)
                        .orElse("no CA the JVM trusts") + " did not sign (--ca-file names the CA bundle)";
            }
            if (has(chain, "No subject alternative", "No name matching", "Cannot verify hostname",
                    "hostname verification")) {
                return what + " presented a certificate for another host name (connect with a name the "
                        + "certificate lists)";
            }
            if (!has(chain, "certificate_required", "bad_certificate", "unknown_ca", "certificate_unknown")) {
                // TLS 1.3: the client finishes its handshake before the server checks the client's
                // certificate, so the refusal arrives as an alert the call may never read: what the call
                // reports depends on timing ("Broken pipe", "Connection reset", "End of stream or
                // IOException", ...) and TLS 1.2 servers say only handshake_failure. Ask again over TLS 1.3
                // and read the server's alert; a server that is down answers "Connection refused" here
                // and the failure is reported as usual.
                chain = chain + " | " + serverAlert(address, tls);
            }
            if (has(chain, "certificate_required", "bad_certificate", "unknown_ca", "certificate_unknown")) {
                return tls.certFile().isPresent()
                        ? what + " refused the client certificate " + tls.certFile().get()
                        + " (not signed by a CA it trusts, or expired)"
                        : what + " requires a client certificate: give --client-cert and --client-key "
                        + "(or TPMKMS_CLIENT_CERT/TPMKMS_CLIENT_KEY)";
            }
            if (has(chain, "SSLHandshakeException", "SSLException")) {
                return "the TLS handshake with " + what + " failed: " + lastMessage(e);
            }
            return null;
        }
        if (speaksTls(address)) {
            return what + " speaks TLS: give its CA bundle with --ca-file FILE (or TPMKMS_CA_FILE; remembered "
                    + "for this address afterwards)";
        }
        return null;
    }

    private static boolean has(String chain, String... needles) {
        for (String n : needles) {
            if (chain.contains(n)) return true;
        }
        return false;
    }

    private static String causes(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            b.append(t.getClass().getName()).append(": ").append(t.getMessage()).append(" | ");
            for (Throwable s : t.getSuppressed()) b.append(s).append(" | ");
        }
        if (e instanceof StatusRuntimeException sre && sre.getStatus().getDescription() != null) {
            b.append(sre.getStatus().getDescription());
        }
        return b.toString();
    }

    private static String lastMessage(Throwable e) {
        String m = e.getMessage();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null) m = t.getMessage();
        }
        return m;
    }

    /** The message of the alert the server sends after a handshake with the same client certificate (or none). */
    static String serverAlert(String address, ClientTls tls) {
        HostPort hp = HostPort.of(address);
        if (hp == null) return "";
        try (Socket plain = new Socket()) {
            plain.connect(new InetSocketAddress(hp.host(), hp.port()), 2000);
            plain.setSoTimeout(2000);
            SSLContext ctx = SSLContext.getInstance("TLSv1.3");
            javax.net.ssl.KeyManager[] km = tls.certFile().isPresent()
                    ? new javax.net.ssl.KeyManager[] {new io.tpmkms.tls.ReloadingKeyManager(tls.certFile().get(),
                    tls.keyFile().get())} : null;
            ctx.init(km, new TrustManager[] {trustAny(new boolean[1])}, null);
            try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, hp.host(), hp.port(), false)) {
                s.setEnabledProtocols(new String[] {"TLSv1.3"});
                s.startHandshake();
                // the server's answer to the client's (empty or refused) certificate: an alert, read here
                s.getInputStream().read();
            }
        } catch (IOException | java.security.GeneralSecurityException | RuntimeException e) {
            return String.valueOf(e.getMessage());
        }
        return "";
    }

    private record HostPort(String host, int port) {
        static HostPort of(String address) {
            int colon = address.lastIndexOf(':');
            if (colon <= 0) return null;
            try {
                return new HostPort(address.substring(0, colon).replace("[", "").replace("]", ""),
                        Integer.parseInt(address.substring(colon + 1)));
            } catch (NumberFormatException e) {
                return null;
            }
        }
    }

    private static X509TrustManager trustAny(boolean[] sawCertificate) {
        return new X509TrustManager() {
            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType) {
            }

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType) {
                sawCertificate[0] = true;
            }

            @Override
            public X509Certificate[] getAcceptedIssuers() {
                return new X509Certificate[0];
            }
        };
    }

    /**
     * Whether a TLS handshake with {@code address} gets as far as a server certificate (trusting any,
     * verifying nothing, sending nothing else): a probe made only to explain a failed plaintext call.
     */
    static boolean speaksTls(String address) {
        HostPort hp = HostPort.of(address);
        if (hp == null) return false;
        boolean[] sawCertificate = {false};
        try (Socket plain = new Socket()) {
            plain.connect(new InetSocketAddress(hp.host(), hp.port()), 2000);
            plain.setSoTimeout(2000);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, new TrustManager[] {trustAny(sawCertificate)}, null);
            try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, hp.host(), hp.port(), false)) {
                s.startHandshake();
            }
        } catch (IOException | java.security.GeneralSecurityException | RuntimeException e) {
            // a failed handshake after the certificate (client certificate required) still counts
        }
        return sawCertificate[0];
    }
}

package io.tpmkms.cli.connection;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import io.grpc.MethodDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The two messages of {@code grpc.health.v1.Health/Check} on the wire (HealthCheckRequest
 * {@code service = 1}; HealthCheckResponse {@code status = 1}), so the CLI needs no generated
 * health classes (grpc-services would add a second copy of what the services carry).
 */
final class HealthWire {
    private HealthWire() {
    }

    private static final String[] STATUS = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

    static final MethodDescriptor<byte[], byte[]> CHECK = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName("grpc.health.v1.Health/Check")
            .setRequestMarshaller(new Bytes())
            .setResponseMarshaller(new Bytes())
            .build();

    static byte[] request(String service) {
        if (service.isEmpty()) return new byte[0];
        try {
            byte[] out = new byte[CodedOutputStream.computeStringSize(1, service)];
            CodedOutputStream o = CodedOutputStream.newInstance(out);
            o.writeString(1, service);
            o.checkNoSpaceLeft();
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String status(byte[] response) {
        try {
            CodedInputStream in = CodedInputStream.newInstance(response);
            int status = 0;
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
                if (tag == (1 << 3)) {
                    status = in.readEnum();
                } else if (!in.skipField(tag)) {
                    break;
                }
            }
            return status >= 0 && status < STATUS.length ? STATUS[status] : "status " + status;
        } catch (IOException e) {
            return "unreadable answer";
        }
    }

    private static final class Bytes implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}

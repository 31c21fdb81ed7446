package io.tpmkms.cli.audit;

import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.tpmkms.cli.format.DurationText;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** The values the audit commands take: times ago, operation names, outcomes. */
final class AuditOptions {

    private static final Pattern DURATION = Pattern.compile("\\d{1,9}[dhmsDHMS]");

    /** The key service's RPC names ("Encrypt", "CreateKey", ...), in contract order. */
    static final List<String> KEY_SERVICE_METHODS;

    static {
        ServiceDescriptor service = KeyServiceGrpc.getServiceDescriptor();
        List<String> names = new ArrayList<>();
        for (MethodDescriptor<?, ?> m : service.getMethods()) {
            names.add(m.getBareMethodName());
        }
        KEY_SERVICE_METHODS = List.copyOf(names);
    }

    private AuditOptions() {
    }

    /** An ISO-8601 time, or a duration ({@code 1h}, {@code 7d}) meaning that long before now. */
    static Instant timeOrAgo(String text, Clock clock) {
        String t = text.strip();
        if (DURATION.matcher(t).matches()) {
            return clock.instant().minus(DurationText.parse(t));
        }
        try {
            return TimeText.parse(t);
        } catch (TypeConversionException e) {
            throw new TypeConversionException("'" + text + "' is neither an ISO-8601 time like 2030-01-31T12:00:00Z "
                    + "nor a duration ago like 1h, 30m, 7d");
        }
    }

    /**
     * The operation as recorded: a name with a {@code /} is taken as is; a bare name is a key
     * service RPC, matched case-insensitively, e.g. {@code encrypt} is
     * {@code tpmkms.key.v1.KeyService/Encrypt}.
     */
    static String operation(String text) {
        String t = text.strip();
        if (t.contains("/")) {
            return t;
        }
        for (String method : KEY_SERVICE_METHODS) {
            if (method.equalsIgnoreCase(t)) {
                return KeyServiceGrpc.SERVICE_NAME + "/" + method;
            }
        }
        throw new TypeConversionException("unknown operation '" + text + "': a key service RPC ("
                + String.join(", ", KEY_SERVICE_METHODS) + ") or a full name like SERVICE/METHOD");
    }

    /** A gRPC status code name, upper-cased: {@code ok} is {@code OK}. */
    static String outcome(String text) {
        String t = text.strip().toUpperCase(Locale.ROOT).replace('-', '_');
        for (Status.Code code : Status.Code.values()) {
            if (code.name().equals(t)) {
                return t;
            }
        }
        throw new TypeConversionException("unknown outcome '" + text + "' (expected a gRPC status code: "
                + String.join(", ", Arrays.stream(Status.Code.values()).map(Enum::name).toList()) + ")");
    }

    static final class TimeOrAgoConverter implements ITypeConverter<Instant> {
        @Override
        public Instant convert(String value) {
            return timeOrAgo(value, Clock.systemUTC());
        }
    }

    static final class OperationConverter implements ITypeConverter<String> {
        @Override
        public String convert(String value) {
            return operation(value);
        }
    }

    static final class OutcomeConverter implements ITypeConverter<String> {
        @Override
        public String convert(String value) {
            return outcome(value);
        }
    }
}

package io.tpmkms.cli.format;

import com.google.protobuf.Timestamp;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Timestamps as ISO-8601: shown in UTC to the second, typed with {@code Z} or an offset. */
public final class TimeText {

    private TimeText() {
    }

    public static Instant parse(String text) {
        try {
            return OffsetDateTime.parse(text).toInstant();
        } catch (DateTimeParseException e) {
            throw new TypeConversionException("'" + text + "' is not an ISO-8601 time like 2030-01-31T12:00:00Z");
        }
    }

    public static String show(Timestamp t) {
        if (t.getSeconds() == 0 && t.getNanos() == 0) {
            return "-";
        }
        return Instant.ofEpochSecond(t.getSeconds(), t.getNanos()).truncatedTo(ChronoUnit.SECONDS).toString();
    }

    public static Timestamp toProto(Instant i) {
        return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
    }

    public static final class Converter implements ITypeConverter<Instant> {
        @Override
        public Instant convert(String value) {
            return parse(value);
        }
    }
}

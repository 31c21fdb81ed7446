package io.tpmkms.cli.auth;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * Reads the claims of a JWT access token for display ({@code tpmkms login} names the user).
 * The signature is NOT checked: the CLI is the token's holder, not its audience, and shows the
 * claims only as a courtesy; the services verify tokens. An opaque token has no claims.
 */
final class Jwt {

    private Jwt() {
    }

    /** The payload's claims, or an empty object when the token is not a JWT. */
    static JsonObject claims(String token) {
        String[] parts = token.split("\\.");
        if (parts.length != 3) {
            return new JsonObject();
        }
        try {
            JsonElement e = JsonParser.parseString(
                    new String(Base64.getUrlDecoder().decode(parts[1]), StandardCharsets.UTF_8));
            return e.isJsonObject() ? e.getAsJsonObject() : new JsonObject();
        } catch (RuntimeException e) {
            return new JsonObject();
        }
    }

    static String string(JsonObject claims, String name) {
        return OidcClient.string(claims, name);
    }
}

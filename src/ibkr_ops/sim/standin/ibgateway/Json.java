package ibgateway;

import java.util.List;
import java.util.Map;

/** Just enough JSON for the STATUS reply. */
final class Json {
    private Json() {
    }

    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    static String value(Object value) {
        if (value instanceof Boolean || value instanceof Number) {
            return value.toString();
        }
        if (value instanceof Map<?, ?> map) {
            StringBuilder out = new StringBuilder("{");
            int i = 0;
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                String v = entry.getValue().toString();
                out.append(i++ > 0 ? ", " : "").append(quote(entry.getKey().toString())).append(": ")
                        .append(v.isEmpty() ? "null" : v.matches("-?[0-9.]+") ? v : quote(v));
            }
            return out.append('}').toString();
        }
        if (value instanceof List<?> list) {
            StringBuilder out = new StringBuilder("[");
            for (int i = 0; i < list.size(); i++) {
                out.append(i > 0 ? ", " : "").append(quote(list.get(i).toString()));
            }
            return out.append(']').toString();
        }
        return quote(String.valueOf(value));
    }
}

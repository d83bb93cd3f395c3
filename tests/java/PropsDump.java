// Prints what java.util.Properties.load(InputStream) reads from each file named on the command
// line, one JSON object per file: {"props": {...}} or {"error": "..."}; ASCII only, so the
// platform's default charset cannot change the output.
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.Properties;
import java.util.TreeSet;

public class PropsDump {
    static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        for (String path : args) {
            Properties props = new Properties();
            try (InputStream in = new FileInputStream(path)) {
                props.load(in);
            } catch (IllegalArgumentException e) {
                System.out.println("{\"error\": " + json(e.toString()) + "}");
                continue;
            }
            StringBuilder line = new StringBuilder("{\"props\": {");
            String comma = "";
            for (String key : new TreeSet<>(props.stringPropertyNames())) {
                line.append(comma).append(json(key)).append(": ").append(json(props.getProperty(key)));
                comma = ", ";
            }
            System.out.println(line.append("}}"));
        }
    }
}

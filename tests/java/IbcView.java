// What IBC itself reads from config.ini: ibcalpha.ibc.DefaultSettings (Properties.load, then
// getString's trim), for the keys given as -Dkeys=A,B. Each file's result is one line after
// IBC's own settings dump, marked with "@@".
import ibcalpha.ibc.DefaultSettings;

public class IbcView {
    public static void main(String[] args) {
        String[] keys = System.getProperty("keys").split(",");
        for (String path : args) {
            DefaultSettings settings = new DefaultSettings(path);
            StringBuilder line = new StringBuilder("@@{");
            String comma = "";
            for (String key : keys) {
                line.append(comma).append(PropsDump.json(key)).append(": ")
                    .append(PropsDump.json(settings.getString(key, "")));
                comma = ", ";
            }
            System.out.println(line.append("}"));
        }
    }
}

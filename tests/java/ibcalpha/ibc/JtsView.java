// Runs IBC's own jts.ini check (JtsIniManager, as IBC does before the Gateway starts) on the
// files named: args[0] config.ini, args[1] jts.ini. In IBC's package because the class is
// package-private; IBC rewrites jts.ini where it disagrees and logs what it found.
package ibcalpha.ibc;

public class JtsView {
    public static void main(String[] args) {
        Settings.initialise(new DefaultSettings(args[0]));
        SessionManager.initialise(true);
        SessionManager.startSession();
        JtsIniManager.initialise(args[1]);
        System.exit(0);
    }
}

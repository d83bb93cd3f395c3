package ibgateway;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import javax.swing.SwingUtilities;

/**
 * The IB Gateway stand-in of ibkr-ops: the class IBC's IbcGateway calls, {@code
 * ibgateway.GWClient.main(new String[] {settingsDir})}, as it calls the real Gateway's.
 *
 * It shows the windows IBC drives (login frame, second-factor, failure and session dialogs,
 * main window, Configure > Settings) and serves the TWS API, after the login, through the
 * simulator's Python API engine run as a child process tied to this JVM. Its own log lines
 * say "GW-SIM:" and never imitate IBC's.
 *
 * Knobs: {@code <install dir>/sim.properties}, then {@code IBKR_GATEWAY_SIM_*} variables
 * (see the simulated installer's sim.properties template).
 */
public final class GWClient {
    private static final DateTimeFormatter STAMP =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss:SSS", Locale.ROOT);

    private GWClient() {
    }

    public static void main(String[] args) {
        Path settings = Paths.get(args.length > 0 && !args[0].isEmpty() ? args[0]
                : System.getProperty("jtsConfigDir", System.getProperty("user.dir")));
        Path jars = jarsDir();
        Properties knobs = knobs(jars.getParent().resolve("sim.properties"), System.getenv());
        Standin standin = new Standin(settings, jars, knobs,
                System.getProperty("restart", ""));
        // ibcstart.sh discards the JVM's stderr: uncaught exceptions go to the log instead.
        Thread.setDefaultUncaughtExceptionHandler((thread, error) -> {
            log("uncaught exception in " + thread.getName() + ": " + error);
            for (StackTraceElement frame : error.getStackTrace()) {
                log("    at " + frame);
            }
        });
        SwingUtilities.invokeLater(standin::start);
    }

    /** One log line on stdout, which ibcstart.sh hands to the service's journal. */
    static void log(String message) {
        synchronized (System.out) {
            System.out.println(LocalDateTime.now().format(STAMP) + " GW-SIM: " + message);
            System.out.flush();
        }
    }

    private static Path jarsDir() {
        try {
            Path jar = Paths.get(GWClient.class.getProtectionDomain().getCodeSource()
                    .getLocation().toURI());
            return Files.isDirectory(jar) ? jar : jar.getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException("cannot locate the stand-in's jar", e);
        }
    }

    /** sim.properties (key=value) overridden by IBKR_GATEWAY_SIM_KEY variables. */
    static Properties knobs(Path file, Map<String, String> env) {
        Properties knobs = new Properties();
        if (Files.isRegularFile(file)) {
            try (var in = Files.newBufferedReader(file)) {
                knobs.load(in);
            } catch (IOException e) {
                log("cannot read " + file + ": " + e.getMessage());
            }
        }
        String prefix = "IBKR_GATEWAY_SIM_";
        for (Map.Entry<String, String> entry : env.entrySet()) {
            if (entry.getKey().startsWith(prefix)) {
                knobs.setProperty(entry.getKey().substring(prefix.length())
                        .toLowerCase(Locale.ROOT), entry.getValue());
            }
        }
        return knobs;
    }
}

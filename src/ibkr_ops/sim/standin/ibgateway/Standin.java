package ibgateway;

import java.awt.BorderLayout;
import java.awt.GridLayout;
import java.awt.Window;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.DayOfWeek;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.time.temporal.TemporalAdjusters;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.FutureTask;
import javax.swing.ButtonGroup;
import javax.swing.JButton;
import javax.swing.JDialog;
import javax.swing.JFrame;
import javax.swing.JLabel;
import javax.swing.JMenu;
import javax.swing.JMenuBar;
import javax.swing.JMenuItem;
import javax.swing.JPanel;
import javax.swing.JPasswordField;
import javax.swing.JTextArea;
import javax.swing.JTextField;
import javax.swing.JToggleButton;
import javax.swing.SwingUtilities;
import javax.swing.Timer;

/**
 * The Gateway's life in one JVM: login frame, second factor, main window, settings, the API
 * child, the daily auto-restart, and the control commands. Everything Swing runs on the EDT.
 */
final class Standin {
    private static final String TITLE = "IBKR Gateway";
    private static final ZoneId IBKR_ZONE = ZoneId.of("America/New_York");
    private static final List<String> FAULTS = List.of("hang", "slow-handshake", "crash-after",
            "reject-login", "twofa-timeout", "leak", "existing-session", "no-login-dialog",
            "too-many-attempts", "unknown-dialog", "slow-stop", "farm-broken",
            "connectivity-lost", "login-hang", "newer-version", "version-notice", "desupported");
    private static final List<String> VALUED = List.of("slow-handshake", "crash-after", "leak",
            "slow-stop");
    private static final List<String> API_FAULTS = List.of("hang", "slow-handshake",
            "farm-broken", "connectivity-lost");

    private final Path settings;
    private final Path jars;
    private final Properties knobs;
    private final String restartDir;
    private final Map<String, String> faults = new LinkedHashMap<>();
    private final List<byte[]> leaked = new ArrayList<>();

    private volatile String state = "starting";
    private volatile boolean loggedIn;
    private volatile boolean exiting;
    private boolean warm;
    private String user = "";
    private String mode = "live";
    private Path userDir;
    private Properties saved = new Properties();
    private int logins;

    private JFrame loginFrame;
    private JButton loginButton;
    private JTextField userField;
    private JPasswordField passwordField;
    private JToggleButton paperToggle;
    private JFrame mainWindow;
    private JMenuItem settingsItem;
    private JFrame splash;
    private JDialog secondFactor;
    private Timer secondFactorExpiry;
    private volatile ApiChild api;
    private long fastRestartAt;
    private LocalDateTime nextAutoRestart;
    private Timer leakTimer;

    Standin(Path settings, Path jars, Properties knobs, String restartDir) {
        this.settings = settings;
        this.jars = jars;
        this.knobs = knobs;
        this.restartDir = restartDir;
    }

    // ------------------------------------------------------------------ start
    void start() {
        Runtime.getRuntime().addShutdownHook(new Thread(this::onJvmShutdown, "shutdown-hook"));
        GWClient.log("IB Gateway stand-in (ibkr-ops) starting, pid " + ProcessHandle.current().pid()
                + ", settings " + settings + (restartDir.isEmpty() ? "" : ", restart " + restartDir));
        for (String spec : knob("faults", "").split(",")) {
            if (!spec.isBlank()) {
                String error = setFault(spec.strip());
                if (error != null) {
                    GWClient.log("sim.properties: " + error);
                }
            }
        }
        int controlPort = (int) number("control_port", 0);
        if (controlPort > 0) {
            try {
                Control.serve(knob("control_host", "127.0.0.1"), controlPort, this::controlOffEdt);
            } catch (IOException e) {
                GWClient.log("control port " + controlPort + " is not available: " + e.getMessage());
                Runtime.getRuntime().halt(1);
            }
        }
        new Timer(1000, e -> clockTick()).start();
        boolean tokenValid = false;
        if (!restartDir.isEmpty()) {
            userDir = settings.resolve(restartDir);
            tokenValid = consumeAutorestart();
        }
        if (faults.containsKey("no-login-dialog")) {
            state = "no-login-dialog";
            GWClient.log("fault no-login-dialog: the login frame is not shown");
            return;
        }
        showLoginFrame();
        if (tokenValid) {
            warm = true;
            loadSaved();
            mode = saved.getProperty("mode", mode);
            user = saved.getProperty("user", user);
            GWClient.log("autorestart token accepted: logging in without credentials");
            later(number("login_delay", 0), this::authenticate);
        }
    }

    /** Read and delete the autorestart file; whether its token is still good. */
    private boolean consumeAutorestart() {
        Path file = userDir.resolve("autorestart");
        Properties token = new Properties();
        try (var in = Files.newBufferedReader(file)) {
            token.load(in);
            Files.delete(file);
        } catch (IOException e) {
            GWClient.log("no autorestart file in " + userDir + ": a full login is needed");
            return false;
        }
        long fullLogin = Long.parseLong(token.getProperty("full_login", "0"));
        ZonedDateTime reset = lastWeeklyReset(ZonedDateTime.now(IBKR_ZONE));
        if (Instant.ofEpochSecond(fullLogin).isBefore(reset.toInstant())) {
            GWClient.log("autorestart token is from before IBKR's weekly reset (" + reset
                    + "): a full login with the second factor is needed");
            return false;
        }
        return true;
    }

    /** IBKR's weekly session reset: the latest Sunday 01:00 New York time not after now. */
    static ZonedDateTime lastWeeklyReset(ZonedDateTime now) {
        ZonedDateTime reset = now.with(TemporalAdjusters.previousOrSame(DayOfWeek.SUNDAY))
                .truncatedTo(ChronoUnit.DAYS).withHour(1);
        return reset.isAfter(now) ? reset.minusWeeks(1) : reset;
    }

    // ------------------------------------------------------------------ login frame
    private void showLoginFrame() {
        state = "login-dialog";
        loginFrame = new JFrame(TITLE);
        JPanel panel = new JPanel(new GridLayout(0, 2, 4, 4));
        toggles(panel, new JToggleButton("IB API"), new JToggleButton("FIX CTCI"));
        panel.add(new JLabel("Trading Mode"));
        panel.add(new JLabel(""));
        JToggleButton live = new JToggleButton("Live Trading", true);
        paperToggle = new JToggleButton("Paper Trading");
        toggles(panel, live, paperToggle);
        panel.add(new JLabel("Username"));
        userField = new JTextField(16);
        panel.add(userField);
        panel.add(new JLabel("Password"));
        passwordField = new JPasswordField(16);
        panel.add(passwordField);
        loginButton = new JButton("Log In");
        live.addActionListener(e -> loginButton.setText("Log In"));
        paperToggle.addActionListener(e -> loginButton.setText("Paper Log In"));
        loginButton.addActionListener(e -> loginClicked());
        panel.add(loginButton);
        loginFrame.getContentPane().add(panel);
        loginFrame.pack();
        loginFrame.setVisible(true);
    }

    /** Two toggle buttons of which at most one is selected. */
    private static void toggles(JPanel panel, JToggleButton first, JToggleButton second) {
        ButtonGroup group = new ButtonGroup();
        group.add(first);
        group.add(second);
        panel.add(first);
        panel.add(second);
    }

    private void loginClicked() {
        user = userField.getText().strip();
        char[] password = passwordField.getPassword();
        mode = paperToggle.isSelected() ? "paper" : "live";
        loginButton.setEnabled(false);
        if (user.isEmpty() || password.length == 0) {
            GWClient.log("login clicked without a user name or password: nothing sent");
            loginButton.setEnabled(true);
            return;
        }
        java.util.Arrays.fill(password, '\0');
        userDir = settings.resolve(userDirName(user));
        state = "logging-in";
        GWClient.log("login requested: user " + user + ", " + mode + " trading");
        later(number("login_delay", 0), this::authenticate);
    }

    /** What IBKR's servers answer to the credentials (or the token) after the delay. */
    private void authenticate() {
        if (!warm && faults.containsKey("too-many-attempts")) {
            JTextArea text = new JTextArea("Too many failed login attempts. Please wait 10 seconds "
                    + "before attempting to re-login again.");
            failureDialog("Login", text);
            return;
        }
        if (!warm && faults.containsKey("reject-login")) {
            GWClient.log("credentials rejected (fault reject-login)");
            failureDialog("Login failed", new JLabel("Unrecognized Username or Password."));
            return;
        }
        openMainWindow();
        splash = new JFrame("Authenticating...");
        splash.getContentPane().add(new JLabel("Authenticating..."));
        splash.pack();
        splash.setVisible(true);
        later(0.3, () -> afterNotices(this::afterSession));
    }

    private void failureDialog(String title, java.awt.Component message) {
        state = "login-failed";
        JDialog dialog = new JDialog(loginFrame, title, false);
        JButton ok = new JButton("OK");
        ok.addActionListener(e -> {
            dialog.dispose();
            state = "login-dialog";
            loginButton.setEnabled(true);
        });
        dialog.getContentPane().add(message, BorderLayout.CENTER);
        dialog.getContentPane().add(ok, BorderLayout.SOUTH);
        dialog.pack();
        dialog.setVisible(true);
    }

    /**
     * The Gateway's version windows as the login reaches IBKR: the upgrade offer (IBC answers
     * it), a refused build (nothing goes on until OK closes the Gateway) and the notice of a
     * coming cutoff (the login goes on beside it). Knobs: desupport_date (yyyymmdd),
     * desupport_minimum and notice_version (IBKR's form, 1030.1).
     */
    private void afterNotices(Runnable next) {
        if (faults.containsKey("newer-version")) {
            state = "newer-version";
            VersionNotices.newerVersion(loginFrame, () -> afterVersion(next)).setVisible(true);
            return;
        }
        afterVersion(next);
    }

    private void afterVersion(Runnable next) {
        String running = noticeVersion();
        if (faults.containsKey("desupported")) {
            state = "desupported";
            GWClient.log("showing the refusal of a desupported build (" + running + ")");
            VersionNotices.desupported(loginFrame, TITLE, running, () -> shutdown(0))
                    .setVisible(true);
            return;
        }
        if (faults.containsKey("version-notice")) {
            GWClient.log("showing the desupport notice for " + running + " ("
                    + knob("desupport_date", "20261215") + ")");
            // Owned by the main window: it stays when the login frame goes, until OK.
            VersionNotices.desupportNotice(mainWindow, TITLE, versionNotice()).setVisible(true);
        }
        afterUnknown(next);
    }

    /** IBKR's notice of a coming cutoff, for the window and for API message 2172. */
    private String versionNotice() {
        return VersionNotices.noticeText(noticeVersion(), knob("desupport_date", "20261215"),
                knob("desupport_minimum", "1050.1"));
    }

    /** This build in IBKR's form (1030.1): the install directory's number and build 1. */
    private String noticeVersion() {
        return knob("notice_version", jars.getParent().getFileName() + ".1");
    }

    /** A notice IBC has no handler for blocks the login until someone closes it. */
    private void afterUnknown(Runnable next) {
        if (!faults.containsKey("unknown-dialog")) {
            next.run();
            return;
        }
        state = "waiting-dialog";
        JDialog notice = new JDialog(loginFrame, "Important Notice", false);
        JButton ok = new JButton("I Acknowledge");
        ok.addActionListener(e -> {
            notice.dispose();
            next.run();
        });
        notice.getContentPane().add(new JLabel("IBKR has an important notice for this account."),
                BorderLayout.CENTER);
        notice.getContentPane().add(ok, BorderLayout.SOUTH);
        notice.pack();
        notice.setVisible(true);
    }

    private void afterSession() {
        if (!faults.containsKey("existing-session") || warm) {
            afterSecondFactor();
            return;
        }
        existingSessionDialog(this::afterSecondFactor);
    }

    private void existingSessionDialog(Runnable proceed) {
        String before = state;
        state = "existing-session";
        JDialog dialog = new JDialog(loginFrame != null ? loginFrame : mainWindow,
                "Existing session detected", false);
        JButton proceedButton = new JButton("Continue Login");
        JButton exit = new JButton("Exit Application");
        proceedButton.addActionListener(e -> {
            dialog.dispose();
            GWClient.log("existing session: this session continues, the other one is closed");
            state = before;
            proceed.run();
        });
        exit.addActionListener(e -> {
            dialog.dispose();
            GWClient.log("existing session: this session ends");
            shutdown(0);
        });
        dialog.getContentPane().add(new JLabel("Another session is already logged in with this "
                + "user name."), BorderLayout.CENTER);
        JPanel buttons = new JPanel();
        buttons.add(proceedButton);
        buttons.add(exit);
        dialog.getContentPane().add(buttons, BorderLayout.SOUTH);
        dialog.pack();
        dialog.setVisible(true);
    }

    private void afterSecondFactor() {
        String how = knob("second_factor", "auto").toLowerCase(Locale.ROOT);
        if (warm || "paper".equals(mode) || "off".equals(how)) {
            finishLogin();
            return;
        }
        state = "second-factor";
        secondFactor = new JDialog(loginFrame, "Second Factor Authentication", false);
        if ("passkey".equals(how)) {
            // A ceremony only a person at the screen can finish (invoke vnc --interactive).
            secondFactor.getContentPane().add(new JLabel("Approve this login with your passkey."),
                    BorderLayout.CENTER);
            JButton approveButton = new JButton("Approve");
            approveButton.addActionListener(e -> approve("Approve button"));
            secondFactor.getContentPane().add(approveButton, BorderLayout.SOUTH);
        } else {
            secondFactor.getContentPane().add(new JLabel("Please approve the login notification "
                    + "sent to your mobile device (IBKR Mobile)."));
        }
        secondFactor.pack();
        secondFactor.setVisible(true);
        double expiry = number("second_factor_timeout", 180);
        GWClient.log("second factor: waiting for approval (" + how + "), the prompt expires in "
                + fmt(expiry) + " s");
        secondFactorExpiry = new Timer((int) (expiry * 1000), e -> secondFactorExpired());
        secondFactorExpiry.setRepeats(false);
        secondFactorExpiry.start();
        if ("auto".equals(how)) {
            later(number("second_factor_delay", 1), () -> {
                if (!faults.containsKey("twofa-timeout")) {
                    approve("automatically");
                }
            });
        }
    }

    private boolean approve(String how) {
        if (!"second-factor".equals(state) || secondFactor == null) {
            return false;
        }
        GWClient.log("second factor approved (" + how + ")");
        secondFactorExpiry.stop();
        secondFactor.dispose();
        secondFactor = null;
        finishLogin();
        return true;
    }

    private void secondFactorExpired() {
        if (secondFactor == null) {
            return;
        }
        GWClient.log("second factor not approved in time: the prompt expired, back at the login "
                + "frame");
        secondFactor.dispose();
        secondFactor = null;
        // The main window stays (IBC holds it for its configuration tasks); the splash goes.
        splash.dispose();
        splash = null;
        state = "login-dialog";
        loginButton.setEnabled(true);
    }

    private void finishLogin() {
        state = "starting-application";
        loginFrame.dispose();
        splash.setTitle("Initializing environment...");
        if (faults.containsKey("login-hang")) {
            // IBKR's side never finishes the session: the splash stays, the API never opens.
            GWClient.log("login-hang: the login stalls at 'Initializing environment...'");
            return;
        }
        later(0.2, () -> {
            splash.setTitle("Starting application...");
            later(0.2, () -> {
                splash.dispose();
                splash = null;
                loggedIn();
            });
        });
    }

    private void loggedIn() {
        logins++;
        loggedIn = true;
        state = "logged-in";
        if (!warm) {
            loadSaved();
            saved.setProperty("full_login", Long.toString(Instant.now().getEpochSecond()));
            saved.setProperty("user", user);
            saved.setProperty("mode", mode);
            store();
        }
        mainWindow.setTitle(TITLE);
        settingsItem.setEnabled(true);
        armAutoRestart(false);
        GWClient.log("logged in (" + (warm ? "warm restart, no second factor" : "full login")
                + "), " + mode + " trading");
        startApi();
    }

    // ------------------------------------------------------------------ main window
    private void openMainWindow() {
        if (mainWindow != null) {
            return;
        }
        mainWindow = new JFrame("Loading...");
        JMenuBar bar = new JMenuBar();
        JMenu file = new JMenu("File");
        JMenuItem close = new JMenuItem("Close");
        close.addActionListener(e -> SwingUtilities.invokeLater(this::confirmExit));
        file.add(close);
        JMenu configure = new JMenu("Configure");
        settingsItem = new JMenuItem("Settings");
        settingsItem.setEnabled(false);
        settingsItem.addActionListener(e -> SwingUtilities.invokeLater(this::openSettings));
        configure.add(settingsItem);
        JMenu help = new JMenu("Help");
        help.add(new JMenuItem("About IB Gateway"));
        bar.add(file);
        bar.add(configure);
        bar.add(help);
        mainWindow.setJMenuBar(bar);
        mainWindow.getContentPane().add(new JLabel("IB Gateway (ibkr-ops stand-in)"));
        mainWindow.pack();
        mainWindow.setVisible(true);
    }

    private void confirmExit() {
        JDialog dialog = new JDialog(mainWindow, TITLE, false);
        JButton yes = new JButton("Yes");
        JButton no = new JButton("No");
        yes.addActionListener(e -> {
            dialog.dispose();
            shutdown(0);
        });
        no.addActionListener(e -> dialog.dispose());
        dialog.getContentPane().add(new JLabel("Are you sure you want to exit?"), BorderLayout.CENTER);
        JPanel buttons = new JPanel();
        buttons.add(yes);
        buttons.add(no);
        dialog.getContentPane().add(buttons, BorderLayout.SOUTH);
        dialog.pack();
        dialog.setVisible(true);
    }

    private void openSettings() {
        ConfigDialog.open(mainWindow, new ConfigDialog.Values(apiPort(), readOnly(), autoRestart()),
                this::applySettings);
    }

    private void applySettings(ConfigDialog.Values values) {
        boolean apiChanged = values.port() != apiPort() || values.readOnly() != readOnly();
        LocalTime before = autoRestart();
        loadSaved();  // the settings on disk are the truth; only these three change
        saved.setProperty("api_port." + mode, Integer.toString(values.port()));
        saved.setProperty("read_only_api", Boolean.toString(values.readOnly()));
        saved.setProperty("auto_restart", values.autoRestart().format(ConfigDialog.TWELVE_HOUR));
        store();
        GWClient.log("settings applied: API port " + values.port() + ", read-only "
                + values.readOnly() + ", auto restart " + values.autoRestart()
                .format(ConfigDialog.TWELVE_HOUR));
        if (!values.autoRestart().equals(before) && !scheduleFastRestart(values.autoRestart())) {
            armAutoRestart(true);
        }
        if (apiChanged && loggedIn) {
            GWClient.log("API settings changed: the API server restarts with them");
            stopApi();
            startApi();
        }
    }

    /**
     * restart_delay (a test knob): an auto-restart IBC sets to the next minute (a RESTART)
     * fires after that delay instead of at the minute. Whether it took over.
     */
    private boolean scheduleFastRestart(LocalTime at) {
        String delay = knob("restart_delay", "");
        LocalTime now = LocalTime.now().truncatedTo(ChronoUnit.MINUTES);
        if (delay.isBlank() || !(at.equals(now) || at.equals(now.plusMinutes(1))
                || at.equals(now.plusMinutes(2)))) {
            return false;
        }
        fastRestartAt = System.currentTimeMillis() + (long) (Double.parseDouble(delay) * 1000);
        return true;
    }

    private int apiPort() {
        String port = saved.getProperty("api_port." + mode);
        return port != null ? Integer.parseInt(port) : ("paper".equals(mode) ? 4002 : 4001);
    }

    private boolean readOnly() {
        return Boolean.parseBoolean(saved.getProperty("read_only_api", "true"));
    }

    private LocalTime autoRestart() {
        return LocalTime.parse(saved.getProperty("auto_restart", "11:45 PM"), ConfigDialog.TWELVE_HOUR);
    }

    // ------------------------------------------------------------------ restarts and exits
    private void clockTick() {
        if (!loggedIn || exiting) {
            return;
        }
        if (fastRestartAt > 0 && System.currentTimeMillis() >= fastRestartAt) {
            fastRestartAt = 0;
            autoRestartNow("restart_delay after a new auto-restart time");
            return;
        }
        if (nextAutoRestart != null && !LocalDateTime.now().isBefore(nextAutoRestart)) {
            autoRestartNow("auto restart time " + autoRestart().format(ConfigDialog.TWELVE_HOUR));
        }
    }

    /**
     * The next moment the daily auto-restart time comes round. A time set (by IBC, through the
     * settings dialog) to the minute now running is due at once, as a clock showing that minute
     * sees it; at the login it is not, or a relaunch within the restart minute would restart
     * again.
     */
    private void armAutoRestart(boolean currentMinute) {
        LocalDateTime now = LocalDateTime.now();
        LocalDateTime next = now.toLocalDate().atTime(autoRestart());
        boolean due = next.isAfter(now) || (currentMinute && next.plusMinutes(1).isAfter(now));
        nextAutoRestart = due ? next : next.plusDays(1);
    }

    /** The Gateway's own restart: the autorestart token for the next start, then exit 0. */
    private void autoRestartNow(String why) {
        GWClient.log("auto restart (" + why + "): writing the autorestart file and exiting");
        loadSaved();  // the token carries the last full login as the settings on disk say
        try {
            Files.createDirectories(userDir);
            Files.writeString(userDir.resolve("autorestart"), "full_login="
                    + saved.getProperty("full_login", "0") + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            GWClient.log("cannot write the autorestart file: " + e.getMessage());
        }
        shutdown(0);
    }

    /** Close the API (the engine logs out) and exit the JVM with {@code status}. */
    private void shutdown(int status) {
        if (exiting) {
            return;
        }
        exiting = true;
        state = "exiting";
        JDialog progress = new JDialog(mainWindow, "Shutdown progress", false);
        progress.getContentPane().add(new JLabel("Shutting down..."));
        progress.pack();
        progress.setVisible(true);
        new Thread(() -> {
            stopApi();
            GWClient.log("exiting with status " + status);
            System.exit(status);
        }, "shutdown").start();
    }

    /** SIGTERM (systemctl stop through ibcstart.sh): the Gateway logs out before it goes. */
    private void onJvmShutdown() {
        if (api != null) {
            GWClient.log("JVM shutting down: the API closes and the session logs out");
            String slow = faults.get("slow-stop");
            if (slow != null) {
                GWClient.log("slow-stop=" + slow + ": logging out takes " + slow + " s");
                try {
                    Thread.sleep((long) (Double.parseDouble(slow) * 1000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            stopApi();
        }
    }

    // ------------------------------------------------------------------ API child
    private void startApi() {
        List<String> argv = new ArrayList<>(List.of(python(), "-I",
                jars.resolve("ibkr-gateway-sim.pyz").toString(), "api",
                "--port", Integer.toString(apiPort()), "--read-only", readOnly() ? "yes" : "no",
                "--trading-mode", mode, "--login-id", user, "--settings-dir", settings.toString()));
        if (warm) {
            argv.add("--warm");
        }
        for (String name : new String[] {"accounts", "logins", "api_host", "gateway_version"}) {
            String value = knob(name, "");
            if (!value.isBlank()) {
                argv.add("--" + name.replace('_', '-'));
                argv.add(value);
            }
        }
        for (Map.Entry<String, String> fault : faults.entrySet()) {
            if (API_FAULTS.contains(fault.getKey())) {
                argv.add("--fault");
                argv.add(fault.getKey() + (fault.getValue().isEmpty() ? "" : "=" + fault.getValue()));
            }
        }
        if (faults.containsKey("version-notice")) {
            argv.add("--version-notice");
            argv.add(versionNotice());
        }
        try {
            api = ApiChild.start(argv, this::apiDied);
        } catch (IOException e) {
            // As the Gateway with a busy port: no API until the settings name a free one.
            GWClient.log("the API is off: " + e.getMessage());
        }
    }

    /** The API is part of the Gateway: without it, the JVM must not look alive. */
    private void apiDied() {
        if (!exiting) {
            GWClient.log("the Gateway cannot serve the API any more: exiting with status 1");
            Runtime.getRuntime().halt(1);
        }
    }

    private void stopApi() {
        ApiChild child = api;
        api = null;
        if (child != null) {
            child.stop();
        }
    }

    private String python() {
        String configured = knob("python", "");
        if (!configured.isBlank()) {
            return configured;
        }
        return Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
    }

    // ------------------------------------------------------------------ control commands
    private String controlOffEdt(String line) {
        String[] parts = line.split("\\s+", 2);
        String verb = parts[0].toUpperCase(Locale.ROOT);
        String arg = parts.length > 1 ? parts[1].strip() : "";
        if ("STATUS".equals(verb)) {
            return "OK " + status();
        }
        return onEdt(() -> control(verb, arg));
    }

    private String control(String verb, String arg) {
        switch (verb) {
            case "APPROVE":
                return approve("control command") ? "OK approved"
                        : "ERROR no second-factor prompt is pending (state " + state + ")";
            case "FAULT": {
                if (arg.isEmpty()) {
                    return "ERROR usage: FAULT NAME[=VALUE]";
                }
                String error = setFault(arg);
                return error == null ? "OK fault " + arg.split("=")[0].toLowerCase(Locale.ROOT)
                        + " on" : "ERROR " + error;
            }
            case "CLEAR":
                clearFault(arg);
                return "OK cleared";
            case "RESTART":
                if (!loggedIn) {
                    return "ERROR not logged in";
                }
                SwingUtilities.invokeLater(() -> autoRestartNow("control command"));
                return "OK restarting";
            case "STOP":
                SwingUtilities.invokeLater(() -> shutdown(0));
                return "OK stopping";
            default:
                return "ERROR unknown command; use STATUS, APPROVE, FAULT, CLEAR, RESTART or STOP";
        }
    }

    /** Switch a fault on; an error message, or null. */
    private String setFault(String spec) {
        String[] parts = spec.split("=", 2);
        String name = parts[0].strip().toLowerCase(Locale.ROOT);
        String value = parts.length > 1 ? parts[1].strip() : "";
        if (!FAULTS.contains(name)) {
            return "unknown fault '" + name + "'; known: " + String.join(", ", FAULTS);
        }
        if (VALUED.contains(name)) {
            try {
                if (Double.parseDouble(value) < 0) {
                    return "fault " + name + ": the value must not be negative";
                }
            } catch (NumberFormatException e) {
                return "fault " + name + " needs a value: " + name + "=NUMBER";
            }
        } else if (!value.isEmpty()) {
            return "fault " + name + " takes no value";
        }
        faults.put(name, value);
        GWClient.log("fault on: " + spec);
        arm(name, value);
        return null;
    }

    private void arm(String name, String value) {
        if (API_FAULTS.contains(name) && api != null) {
            api.command("FAULT " + name + (value.isEmpty() ? "" : "=" + value));
        } else if ("crash-after".equals(name)) {
            later(Double.parseDouble(value), () -> {
                GWClient.log("crash-after=" + value + ": killing the JVM (SIGKILL)");
                try {
                    new ProcessBuilder("kill", "-9", Long.toString(ProcessHandle.current().pid()))
                            .start();
                } catch (IOException e) {
                    Runtime.getRuntime().halt(137);
                }
            });
        } else if ("leak".equals(name)) {
            if (leakTimer != null) {
                leakTimer.stop();
            }
            int bytesPerTick = (int) (Double.parseDouble(value) * 1024 * 1024 / 240);
            leakTimer = new Timer(250, e -> {
                byte[] chunk = new byte[bytesPerTick];
                for (int i = 0; i < chunk.length; i += 4096) {
                    chunk[i] = 1;
                }
                leaked.add(chunk);
            });
            leakTimer.start();
        } else if ("existing-session".equals(name) && loggedIn) {
            existingSessionDialog(() -> { });
        }
    }

    private void clearFault(String name) {
        List<String> names = name.isEmpty() ? new ArrayList<>(faults.keySet())
                : List.of(name.toLowerCase(Locale.ROOT));
        for (String item : names) {
            faults.remove(item);
            if ("leak".equals(item) && leakTimer != null) {
                leakTimer.stop();
                leakTimer = null;
                leaked.clear();
            }
            if (API_FAULTS.contains(item) && api != null) {
                api.command("CLEAR " + item);
            }
        }
        GWClient.log("faults cleared: " + (names.isEmpty() ? "none" : String.join(", ", names)));
    }

    private String status() {
        ApiChild child = api;
        String engine = child != null && child.alive() ? child.command("STATUS") : "";
        Map<String, Object> mine = new LinkedHashMap<>();
        mine.put("standin", true);
        mine.put("pid", ProcessHandle.current().pid());
        mine.put("state", state);
        mine.put("logged_in", loggedIn);
        mine.put("warm", warm);
        mine.put("trading_mode", mode);
        mine.put("api_port", apiPort());
        mine.put("read_only_api", readOnly());
        mine.put("api_open", child != null && child.alive());
        mine.put("auto_restart_time", autoRestart().format(ConfigDialog.TWELVE_HOUR));
        mine.put("logins", logins);
        mine.put("faults", new LinkedHashMap<>(faults));
        mine.put("leaked_mb", Math.round(leaked.stream().mapToLong(b -> b.length).sum() / 104857.6)
                / 10.0);
        mine.put("windows", onEdt(this::windowTitles));
        StringBuilder json = new StringBuilder();
        if (engine.startsWith("OK {") && engine.endsWith("}")) {
            json.append(engine, 3, engine.length() - 1).append(", ");
        } else {
            json.append("{");
        }
        int i = 0;
        for (Map.Entry<String, Object> entry : mine.entrySet()) {
            json.append(i++ > 0 ? ", " : "").append(Json.quote(entry.getKey())).append(": ")
                    .append(Json.value(entry.getValue()));
        }
        return json.append("}").toString();
    }

    private List<String> windowTitles() {
        List<String> titles = new ArrayList<>();
        for (Window window : Window.getWindows()) {
            if (window.isShowing()) {
                titles.add(window instanceof JFrame frame ? frame.getTitle()
                        : window instanceof JDialog dialog ? dialog.getTitle() : "");
            }
        }
        return titles;
    }

    // ------------------------------------------------------------------ helpers
    private void loadSaved() {
        Properties props = new Properties();
        try (var in = Files.newBufferedReader(userDir.resolve("standin.properties"))) {
            props.load(in);
        } catch (IOException e) {
            // first login of this user here: the Gateway's defaults
        }
        saved = props;
    }

    private void store() {
        if (userDir == null) {
            return;
        }
        try {
            Files.createDirectories(userDir);
            Path tmp = userDir.resolve("standin.properties.tmp");
            try (var out = Files.newBufferedWriter(tmp)) {
                saved.store(out, "IB Gateway stand-in settings");
            }
            Files.move(tmp, userDir.resolve("standin.properties"),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            GWClient.log("cannot save the settings: " + e.getMessage());
        }
    }

    private String knob(String name, String fallback) {
        return knobs.getProperty(name, fallback).strip();
    }

    private double number(String name, double fallback) {
        String value = knob(name, "");
        try {
            return value.isEmpty() ? fallback : Double.parseDouble(value);
        } catch (NumberFormatException e) {
            GWClient.log("knob " + name + "=" + value + " is not a number: " + fallback + " used");
            return fallback;
        }
    }

    private static String fmt(double seconds) {
        return seconds == Math.rint(seconds) ? Long.toString((long) seconds) : Double.toString(seconds);
    }

    private static void later(double seconds, Runnable action) {
        Timer timer = new Timer((int) Math.max(1, seconds * 1000), e -> action.run());
        timer.setRepeats(false);
        timer.start();
    }

    private static <T> T onEdt(Callable<T> action) {
        if (SwingUtilities.isEventDispatchThread()) {
            try {
                return action.call();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        FutureTask<T> task = new FutureTask<>(action);
        SwingUtilities.invokeLater(task);
        try {
            return task.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    /** The per-user settings folder name (a stable digest of the user name, as the Gateway's). */
    static String userDirName(String login) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(login.getBytes(StandardCharsets.UTF_8));
            StringBuilder name = new StringBuilder();
            for (int i = 0; i < 20; i++) {
                name.append((char) ('a' + (digest[i] & 0xff) % 26));
            }
            return name.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}

package ibgateway;

import java.awt.BorderLayout;
import java.awt.Window;
import javax.swing.JButton;
import javax.swing.JDialog;
import javax.swing.JLabel;
import javax.swing.JOptionPane;
import javax.swing.JPanel;
import javax.swing.JTextPane;

/**
 * The Gateway's windows about its own version, built the way the evidence says they are:
 * IBC 3.24.1's NewerVersionDialogHandler for the upgrade offer, IBKR's notice as users quoted
 * it (an HTML text with a link, and OK) for a coming desupport, and a JOptionPane whose message
 * says "is no longer supported" for a build IBKR refuses (the window QuantConnect's IBAutomater
 * clicks OK on, after which the Gateway closes itself). The notice texts are IBKR's quoted
 * words; the titles and layout of the last two are not known from IBKR and are this
 * stand-in's choice (a JDialog titled like the Gateway).
 */
final class VersionNotices {
    private VersionNotices() {
    }

    /**
     * The upgrade offer: a JDialog with a JLabel containing "Newer Version", and on Linux
     * "Yes"/"No" (IBC clicks "OK" if there is one, else "No").
     */
    static JDialog newerVersion(Window owner, Runnable dismissed) {
        JDialog dialog = new JDialog(owner, "Newer Version");
        JButton yes = new JButton("Yes");
        JButton no = new JButton("No");
        yes.addActionListener(e -> {
            GWClient.log("newer version offer: Yes clicked (the stand-in downloads nothing)");
            dialog.dispose();
            dismissed.run();
        });
        no.addActionListener(e -> {
            GWClient.log("newer version offer: No clicked");
            dialog.dispose();
            dismissed.run();
        });
        dialog.getContentPane().add(new JLabel("A Newer Version of IB Gateway is available. "
                + "Would you like to upgrade now?"), BorderLayout.CENTER);
        JPanel buttons = new JPanel();
        buttons.add(yes);
        buttons.add(no);
        dialog.getContentPane().add(buttons, BorderLayout.SOUTH);
        dialog.pack();
        return dialog;
    }

    /** IBKR's words for a coming cutoff (API message 2172 carries the same sentence). */
    static String noticeText(String running, String date, String minimum) {
        return "The version of the application you are running, " + running + ", needs to be "
                + "upgraded, as it will be desupported on " + date + ". The minimum supported "
                + "version at that time will be " + minimum + ".";
    }

    /** The notice of a coming cutoff: the text in an HTML pane with a link, and OK. */
    static JDialog desupportNotice(Window owner, String title, String text) {
        JDialog dialog = new JDialog(owner, title);
        JTextPane pane = new JTextPane();
        pane.setContentType("text/html");
        pane.setText("<html><body>" + text + " The new version can be downloaded "
                + "<a href=\"https://www.interactivebrokers.com/en/trading/ibgateway-stable.php\">"
                + "here</a>.</body></html>");
        pane.setEditable(false);
        JButton ok = new JButton("OK");
        ok.addActionListener(e -> {
            GWClient.log("version notice acknowledged");
            dialog.dispose();
        });
        dialog.getContentPane().add(pane, BorderLayout.CENTER);
        dialog.getContentPane().add(ok, BorderLayout.SOUTH);
        dialog.pack();
        return dialog;
    }

    /** A build IBKR refuses: a JOptionPane with OK; OK closes the Gateway. */
    static JDialog desupported(Window owner, String title, String running, Runnable closed) {
        JOptionPane pane = new JOptionPane("This version, " + running
                + ", is no longer supported. Please download and install the new version.",
                JOptionPane.ERROR_MESSAGE);
        JDialog dialog = pane.createDialog(owner, title);
        dialog.setModal(false);
        pane.addPropertyChangeListener(JOptionPane.VALUE_PROPERTY, e -> {
            if (e.getNewValue() != null && e.getNewValue() != JOptionPane.UNINITIALIZED_VALUE) {
                GWClient.log("desupported build: OK clicked, the Gateway closes");
                dialog.dispose();
                closed.run();
            }
        });
        return dialog;
    }
}

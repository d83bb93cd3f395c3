package ibgateway;

import java.awt.BorderLayout;
import java.awt.CardLayout;
import java.awt.FlowLayout;
import java.awt.GridLayout;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.function.Consumer;
import javax.swing.BoxLayout;
import javax.swing.ButtonGroup;
import javax.swing.JButton;
import javax.swing.JCheckBox;
import javax.swing.JDialog;
import javax.swing.JFrame;
import javax.swing.JLabel;
import javax.swing.JPanel;
import javax.swing.JRadioButton;
import javax.swing.JScrollPane;
import javax.swing.JTextField;
import javax.swing.JTree;
import javax.swing.tree.DefaultMutableTreeNode;
import javax.swing.tree.TreePath;

/**
 * Configure > Settings: a non-modal dialog titled "Configuration" (a modal one would block
 * IBC's menu call), with a section tree (API > Settings, API > Precautions, Lock and Exit)
 * whose selection swaps the panel at once, the controls IBC's configuration tasks look for,
 * and an OK button that applies them.
 */
final class ConfigDialog {
    static final DateTimeFormatter TWELVE_HOUR = DateTimeFormatter.ofPattern("hh:mm a", Locale.US);
    private static final String[] PRECAUTIONS = {
        "Bypass Order Precautions for API Orders",
        "Bypass Bond warning for API Orders.",
        "Bypass negative yield to worst confirmation for API Orders.",
        "Bypass Called Bond warning for API Orders",
        "Bypass \"same action pair trade\" warning for API orders.",
        "Bypass price-based volatility risk warning for API Orders.",
        "Bypass US Stocks market data in shares warning for API Orders",
        "Bypass Redirect Order warning for Stock API Orders",
        "Bypass No Overfill Protection precaution for destinations where implied natively.",
    };

    /** What OK applies. */
    record Values(int port, boolean readOnly, LocalTime autoRestart) {
    }

    private ConfigDialog() {
    }

    static JDialog open(JFrame owner, Values current, Consumer<Values> onOk) {
        JDialog dialog = new JDialog(owner, "Configuration", false);
        CardLayout cards = new CardLayout();
        JPanel panels = new JPanel(cards);

        JPanel api = new JPanel();
        api.setLayout(new BoxLayout(api, BoxLayout.Y_AXIS));
        JCheckBox readOnly = new JCheckBox("Read-Only API", current.readOnly());
        api.add(readOnly);
        JTextField port = new JTextField(Integer.toString(current.port()), 6);
        api.add(named("Socket port", new JLabel("Socket port"), port));
        api.add(named("Master API client ID", new JLabel("Master API client ID"),
                new JTextField("", 6)));
        JButton reset = new JButton("Reset API order ID sequence");
        reset.addActionListener(e -> GWClient.log("API order id sequence reset"));
        api.add(reset);
        api.add(new JCheckBox("Send market data in lots for US stocks for dual-mode API clients"));
        panels.add(api, "API/Settings");

        JPanel precautions = new JPanel(new GridLayout(0, 1));
        for (String text : PRECAUTIONS) {
            precautions.add(new JCheckBox(text));
        }
        panels.add(precautions, "API/Precautions");

        // IBC finds the label, then its parent's parent, which holds the time field and the
        // AM/PM and auto restart/logoff radio buttons.
        JPanel lock = new JPanel();
        lock.setLayout(new BoxLayout(lock, BoxLayout.Y_AXIS));
        JPanel labelRow = new JPanel(new FlowLayout(FlowLayout.LEFT));
        labelRow.add(new JLabel("Set Auto Restart Time (HH:MM)"));
        lock.add(labelRow);
        JTextField time = new JTextField(current.autoRestart().format(
                DateTimeFormatter.ofPattern("hh:mm", Locale.US)), 5);
        lock.add(time);
        JRadioButton am = new JRadioButton("AM", current.autoRestart().getHour() < 12);
        JRadioButton pm = new JRadioButton("PM", current.autoRestart().getHour() >= 12);
        group(am, pm);
        lock.add(am);
        lock.add(pm);
        JRadioButton restart = new JRadioButton("Auto restart", true);
        JRadioButton logoff = new JRadioButton("Auto logoff", false);
        group(restart, logoff);
        lock.add(restart);
        lock.add(logoff);
        panels.add(lock, "Lock and Exit");

        DefaultMutableTreeNode root = new DefaultMutableTreeNode("Configuration");
        DefaultMutableTreeNode apiNode = new DefaultMutableTreeNode("API");
        apiNode.add(new DefaultMutableTreeNode("Settings"));
        apiNode.add(new DefaultMutableTreeNode("Precautions"));
        root.add(apiNode);
        root.add(new DefaultMutableTreeNode("Lock and Exit"));
        JTree tree = new JTree(root);
        tree.addTreeSelectionListener(e -> cards.show(panels, key(e.getPath())));

        JButton ok = new JButton("OK");
        ok.addActionListener(e -> {
            Values values;
            try {
                LocalTime parsed = LocalTime.parse(time.getText().strip()
                        + (pm.isSelected() ? " PM" : " AM"), TWELVE_HOUR);
                values = new Values(Integer.parseInt(port.getText().strip()),
                        readOnly.isSelected(), parsed);
            } catch (RuntimeException bad) {
                GWClient.log("Configuration: invalid value (" + bad.getMessage() + "): not applied");
                dialog.dispose();
                return;
            }
            dialog.dispose();
            onOk.accept(values);
        });
        JButton cancel = new JButton("Cancel");
        cancel.addActionListener(e -> dialog.dispose());
        JPanel buttons = new JPanel();
        buttons.add(ok);
        buttons.add(cancel);

        dialog.getContentPane().add(new JScrollPane(tree), BorderLayout.WEST);
        dialog.getContentPane().add(panels, BorderLayout.CENTER);
        dialog.getContentPane().add(buttons, BorderLayout.SOUTH);
        dialog.pack();
        dialog.setVisible(true);
        return dialog;
    }

    private static String key(TreePath path) {
        Object[] nodes = path.getPath();
        StringBuilder key = new StringBuilder();
        for (int i = 1; i < nodes.length; i++) {
            key.append(i > 1 ? "/" : "").append(nodes[i]);
        }
        return key.toString().equals("API") ? "API/Settings" : key.toString();
    }

    private static JPanel named(String name, JLabel label, JTextField field) {
        JPanel panel = new JPanel(new FlowLayout(FlowLayout.LEFT));
        panel.setName(name);
        panel.add(label);
        panel.add(field);
        return panel;
    }

    private static void group(JRadioButton... buttons) {
        ButtonGroup group = new ButtonGroup();
        for (JRadioButton button : buttons) {
            group.add(button);
        }
    }
}

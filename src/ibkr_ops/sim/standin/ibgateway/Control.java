package ibgateway;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.function.Function;

/**
 * The control port ({@code ibkr-gateway-sim ctl --control-port P COMMAND}): one command per
 * line, one reply line each, as the Python-only simulator serves it. Loopback only.
 */
final class Control {
    private Control() {
    }

    static void serve(String host, int port, Function<String, String> handler) throws IOException {
        ServerSocket server = new ServerSocket(port, 16, InetAddress.getByName(host));
        Thread accept = new Thread(() -> {
            while (true) {
                try {
                    Socket client = server.accept();
                    Thread worker = new Thread(() -> converse(client, handler), "control-client");
                    worker.setDaemon(true);
                    worker.start();
                } catch (IOException e) {
                    return;
                }
            }
        }, "control");
        accept.setDaemon(true);
        accept.start();
        GWClient.log("control port listening on " + host + ":" + port);
    }

    private static void converse(Socket client, Function<String, String> handler) {
        try (client) {
            BufferedReader in = new BufferedReader(new InputStreamReader(client.getInputStream(),
                    StandardCharsets.UTF_8));
            OutputStream out = client.getOutputStream();
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                String reply = handler.apply(line.strip());
                out.write((reply + "\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        } catch (IOException e) {
            // the client went away
        }
    }
}

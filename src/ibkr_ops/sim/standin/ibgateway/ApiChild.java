package ibgateway;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The TWS API of the stand-in: the simulator's Python API engine ({@code ibkr-gateway-sim api})
 * as a child process. Its stdin is a pipe from this JVM: one control command per line, and
 * end-of-file when the JVM is gone, however it went (the child then exits at once, so a
 * {@code kill -9} of the JVM takes the API down with it). Its stdout answers: {@code READY}
 * once the port listens, then one reply per command. Its stderr lines go to the log.
 */
final class ApiChild {
    private static final long READY_TIMEOUT_S = 20;
    private static final long REPLY_TIMEOUT_S = 10;

    private final Process process;
    private final Writer commands;
    private final BlockingQueue<String> replies = new LinkedBlockingQueue<>();
    private volatile boolean stopping;

    private ApiChild(Process process) {
        this.process = process;
        this.commands = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        pump(new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.UTF_8)), true);
        pump(new BufferedReader(new InputStreamReader(process.getErrorStream(),
                StandardCharsets.UTF_8)), false);
    }

    /**
     * Start the engine and wait until its port listens; {@code onDeath} runs (off the EDT)
     * when it exits without being asked to.
     */
    static ApiChild start(List<String> argv, Runnable onDeath) throws IOException {
        ApiChild child = new ApiChild(new ProcessBuilder(argv).start());
        String first = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(READY_TIMEOUT_S);
        try {
            while (first == null && System.nanoTime() < deadline) {
                first = child.replies.poll(200, TimeUnit.MILLISECONDS);
                if (first == null && !child.process.isAlive()) {
                    first = child.replies.poll(200, TimeUnit.MILLISECONDS);
                    if (first == null) {
                        first = "it exited with status " + child.process.exitValue();
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (first == null || !first.startsWith("READY")) {
            child.stop();
            throw new IOException("the API server did not start"
                    + (first == null ? " in " + READY_TIMEOUT_S + " s" : ": " + first));
        }
        child.heartbeat();
        child.process.onExit().thenRun(() -> {
            if (!child.stopping) {
                GWClient.log("the API server process exited unexpectedly (status "
                        + child.process.exitValue() + ")");
                onDeath.run();
            }
        });
        return child;
    }

    private void pump(BufferedReader reader, boolean answers) {
        Thread thread = new Thread(() -> {
            try {
                String line;
                while ((line = reader.readLine()) != null) {
                    if (answers) {
                        replies.add(line);
                    } else {
                        GWClient.log("api: " + line);
                    }
                }
            } catch (IOException e) {
                // the child is gone; its exit is handled by onExit
            }
        }, answers ? "api-replies" : "api-log");
        thread.setDaemon(true);
        thread.start();
    }

    /** One command to the engine (e.g. {@code STATUS}, {@code FAULT hang}); its reply line. */
    synchronized String command(String line) {
        try {
            replies.clear();
            commands.write(line + "\n");
            commands.flush();
            String reply = replies.poll(REPLY_TIMEOUT_S, TimeUnit.SECONDS);
            return reply == null ? "ERROR the API server did not answer" : reply;
        } catch (IOException e) {
            return "ERROR the API server is gone";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "ERROR interrupted";
        }
    }

    /**
     * A PING every half second: a JVM that stops (kill -STOP, a frozen Gateway) stops sending
     * them, and the engine then answers nothing, as an API inside a frozen JVM would not.
     */
    private void heartbeat() {
        Thread thread = new Thread(() -> {
            while (process.isAlive() && !stopping) {
                synchronized (this) {
                    try {
                        commands.write("PING\n");
                        commands.flush();
                    } catch (IOException e) {
                        return;
                    }
                }
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "api-heartbeat");
        thread.setDaemon(true);
        thread.start();
    }

    boolean alive() {
        return process.isAlive();
    }

    /** An orderly stop: the engine closes its clients, logs out and exits. */
    void stop() {
        stopping = true;
        try {
            commands.write("EXIT\n");
            commands.close();
        } catch (IOException e) {
            // already gone
        }
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}

"""A local port forwarded over an open SSH connection (ssh -L), with the bookkeeping a
bounded session needs: how many clients are connected and since when nobody is.

The listening socket is bound to 127.0.0.1 only, so nobody else on the operator's network
reaches the host's loopback service through it. Each accepted client gets its own
``direct-tcpip`` channel; one thread pumps all of them, so closing the forward ends every
connection at once.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

import paramiko

from ibkr_ops.errors import OpsError

_CHUNK = 65536


class LocalForward:
    """127.0.0.1:<local_port> on this machine → 127.0.0.1:<remote_port> on the host."""

    def __init__(self, transport: paramiko.Transport, remote_port: int, local_port: int = 0):
        self._transport = transport
        self._remote_port = remote_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", local_port))
        except OSError as exc:
            self._listener.close()
            raise OpsError(f"cannot listen on 127.0.0.1:{local_port} ({exc.strerror}); "
                           "pick another --local-port or leave it out") from None
        self._listener.listen(4)
        self._pairs: dict[socket.socket, paramiko.Channel] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.clients_total = 0
        self.errors: list[str] = []
        self._idle_since = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="ibkr-ops-forward", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._pairs)

    def idle_for(self) -> float:
        """Seconds since the last client left (0 while one is connected)."""
        with self._lock:
            return 0.0 if self._pairs else time.monotonic() - self._idle_since

    def close(self) -> None:
        """Stop listening and end every forwarded connection."""
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for sock, channel in self._pairs.items():
                channel.close()
                sock.close()
            self._pairs.clear()
        self._listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watched: list[socket.socket | paramiko.Channel] = [self._listener]
                for sock, channel in self._pairs.items():
                    watched += [sock, channel]
            readable, _, _ = select.select(watched, [], [], 0.2)
            for ready in readable:
                if ready is self._listener:
                    self._accept()
                else:
                    self._pump(ready)

    def _accept(self) -> None:
        client, peer = self._listener.accept()
        try:
            channel = self._transport.open_channel(
                "direct-tcpip", ("127.0.0.1", self._remote_port), peer, timeout=15)
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            self.errors.append(f"the host refused the forwarded connection ({exc}); its sshd "
                               "must allow TCP forwarding (AllowTcpForwarding)")
            return
        with self._lock:
            self._pairs[client] = channel
            self.clients_total += 1

    def _pump(self, ready: socket.socket | paramiko.Channel) -> None:
        with self._lock:
            pair = next(((s, c) for s, c in self._pairs.items() if ready in (s, c)), None)
        if pair is None:
            return
        sock, channel = pair
        source, target = (sock, channel) if ready is sock else (channel, sock)
        data = b""
        with contextlib.suppress(OSError):
            data = source.recv(_CHUNK)
        if data:
            with contextlib.suppress(OSError):
                target.sendall(data)
                return
        with self._lock:
            self._pairs.pop(sock, None)
            if not self._pairs:
                self._idle_since = time.monotonic()
        channel.close()
        sock.close()

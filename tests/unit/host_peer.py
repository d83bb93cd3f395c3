"""A scripted API peer for the wire-client unit tests: a real TCP server whose answers each
test writes out frame by frame (the full simulator is used by the integration tests)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Script = Callable[["Conn"], None]


class Conn:
    """The server's side of one client connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def read_prefix(self) -> bytes:
        while len(self.buffer) < 4:
            self._fill()
        data, self.buffer = self.buffer[:4], self.buffer[4:]
        return data

    def read(self) -> list[str]:
        while len(self.buffer) < 4:
            self._fill()
        (size,) = struct.unpack(">I", self.buffer[:4])
        while len(self.buffer) < 4 + size:
            self._fill()
        payload, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
        return payload.decode().split("\0")

    def send(self, *fields: object) -> None:
        payload = b"".join(str(f).encode() + b"\0" for f in fields)
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def handshake(self, version: int = 176) -> str:
        """Read `API\\0` and the version range; answer like a Gateway; return the range."""
        assert self.read_prefix() == b"API\0"
        (wanted,) = self.read()
        self.send(version, "20261125 10:00:00 EST")
        return wanted

    def start_api(self) -> int:
        fields = self.read()
        assert fields[:2] == ["71", "2"], fields
        return int(fields[2])

    def _fill(self) -> None:
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError
        self.buffer += chunk


def logged_in(conn: Conn, *statuses: tuple[int, str], accounts: str = "DU1") -> None:
    """Handshake, startApi, accounts, next id, then these status messages (code, text)."""
    conn.handshake()
    conn.start_api()
    conn.send(15, 1, accounts)
    conn.send(9, 1, 1)
    for code, text in statuses:
        conn.send(4, 2, -1, code, text, "")


def healthy(conn: Conn) -> None:
    """A logged-in Gateway: accounts, next id, farm notices, then the current time."""
    logged_in(conn, (2104, "Market data farm connection is OK:usfarm"), accounts="DU111,DU222,")
    assert conn.read()[:2] == ["49", "1"]
    conn.send(49, 1, 1764082800)


@contextmanager
def peer(*scripts: Script) -> Iterator[tuple[int, list[object]]]:
    """Serve connection i with scripts[i] (the last one repeats); yield (port, errors)."""
    errors: list[object] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # accept() wakes up to notice the end of the test
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        index = 0
        while not stop.is_set():
            try:
                sock, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            script = scripts[min(index, len(scripts) - 1)]
            index += 1
            threading.Thread(target=run, args=(script, sock), daemon=True).start()

    def run(script: Script, sock: socket.socket) -> None:
        with sock:
            try:
                script(Conn(sock))
            except (EOFError, OSError):
                pass
            except AssertionError as exc:
                errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, errors
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()

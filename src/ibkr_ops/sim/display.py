"""The X11 connection a Gateway's JVM holds: opened at start as AWT does, lost with the server.

Java's AWT fails without an X server; so does the simulated Gateway. The connection setup
(byte order, protocol 11.0, no authorisation) is answered by any X server; a refusal is the
same error as no server, as in Java.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from .config import ConfigError

X11_SOCKETS = "/tmp/.X11-unix"  # noqa: S108 - the X server's fixed socket directory
_REFUSED = "Can't connect to X11 window server using '{}' as the value of the DISPLAY variable."


class Display:
    """The open connection to the X server named by ``DISPLAY``, for the JVM's lifetime."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = False
        self._sock = connect(name)

    async def hold(self) -> None:
        """Return when the X server goes away, having said so as Xlib does.

        The real JVM's X I/O error handler prints one line on stderr (which ibcstart.sh
        discards) and Xlib then calls exit(1): no shutdown hook runs, so the Gateway does not
        log out and its session stays open until the next login. That exit is what makes a
        crashed Xvfb restart the Gateway unit (Restart=on-failure).
        """
        loop = asyncio.get_running_loop()
        self._sock.setblocking(False)
        while True:
            try:
                data = await loop.sock_recv(self._sock, 4096)
            except OSError:
                data = b""
            if not data:
                break
        self.lost = True
        print(f"X connection to {self.name} host broken (explicit kill or server shutdown)",
              file=sys.stderr, flush=True)


def connect(display: str) -> socket.socket:
    """The set-up X11 connection to ``display``, or the ConfigError Java would give."""
    if not display:
        raise ConfigError("No X11 DISPLAY variable was set, but this program performed an "
                          "operation which requires it.", 1)
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        raise ConfigError(_REFUSED.format(display), 1)
    targets: list[tuple[socket.AddressFamily, object]] = []
    if host in ("", "unix"):
        targets.append((socket.AF_UNIX, f"\0{X11_SOCKETS}/X{number}"))
        targets.append((socket.AF_UNIX, f"{X11_SOCKETS}/X{number}"))
    else:
        targets.append((socket.AF_INET, (host, 6000 + int(number))))
    setup = b"l\0" + (11).to_bytes(2, "little") + bytes(8)
    for family, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect(address)  # type: ignore[arg-type]
            sock.sendall(setup)
            head = _recv_exactly(sock, 8)
            _recv_exactly(sock, int.from_bytes(head[6:8], "little") * 4)
        except OSError:
            sock.close()
            continue
        if head[0] != 1:  # 0 failed, 2 authenticate
            sock.close()
            break
        sock.settimeout(None)
        return sock
    raise ConfigError(_REFUSED.format(display), 1)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the X server closed the connection")
        data += chunk
    return data

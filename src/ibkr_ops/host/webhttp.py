"""One HTTP(S) POST that ends by a deadline, whatever the server does. Standard library only.

urllib's timeout bounds each socket operation, not the exchange: a server that answers a
byte at a time holds it for ever, and it reads any amount of body. Here one monotonic
deadline bounds the name lookup, the connection, the TLS handshake, the request and every
read of the answer (each read may wait only for what is left), and the body is read up to
``MAX_BODY`` bytes. The status and headers decide what happened: a body that is cut short,
too large or too slow leaves ``body`` None and the status stands.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from typing import Any

# Discord's answer (a message object) is a few kilobytes.
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """The status line and headers, and the body if it came whole, in time and small."""

    status: int
    headers: Message
    body: bytes | None


def post_json(url: str, query: dict[str, str], body: bytes, headers: dict[str, str],
              deadline: float) -> Answer:
    """POST ``body`` as JSON to ``url`` (``query`` added to its own); raise OSError (a
    TimeoutError once ``deadline``, a ``time.monotonic()`` value, has passed) or
    http.client.HTTPException when no status arrives."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    target = (parts.path or "/") + "?" + "&".join(
        filter(None, [parts.query, urllib.parse.urlencode(query)]))
    sock = _connect(host, port, deadline)
    try:
        if tls:
            sock.settimeout(_left(deadline))
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        named = f"[{host}]" if ":" in host else host
        head = [f"POST {target} HTTP/1.1", f"Host: {named}" + (
                    "" if port == (443 if tls else 80) else f":{port}"),
                "Content-Type: application/json", f"Content-Length: {len(body)}",
                "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        sock.settimeout(_left(deadline))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        response = http.client.HTTPResponse(_Bounded(sock, deadline))  # type: ignore[arg-type]
        response.begin()
        try:
            data: bytes | None = response.read(MAX_BODY + 1)
        except (OSError, http.client.HTTPException):
            data = None
        if data is not None and len(data) > MAX_BODY:
            data = None
        return Answer(response.status, response.msg, data)
    finally:
        sock.close()


def reason(exc: BaseException) -> str:
    """A few words for why an exchange failed (never the URL)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    """A connected socket; the name lookup too ends by the deadline (it cannot be
    interrupted, so it runs in a thread that is left behind if it overruns)."""
    try:
        ipaddress.ip_address(host)
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        addresses = _lookup(host, port, deadline)
    problem: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            problem = exc
            if isinstance(exc, TimeoutError):
                break
    raise problem


def _lookup(host: str, port: int, deadline: float) -> list[tuple[Any, ...]]:
    found: list[list[tuple[Any, ...]] | OSError] = []

    def resolve() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(_left(deadline))
    if not found:
        raise TimeoutError("name lookup timed out")
    if isinstance(found[0], OSError):
        raise found[0]
    return found[0]


class _Bounded:
    """What HTTPResponse needs of a socket: a file whose every read ends by the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._raw = _BoundedReader(sock, deadline)

    def makefile(self, mode: str) -> io.BufferedReader:
        del mode
        return io.BufferedReader(self._raw)


class _BoundedReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(_left(self._deadline))
        return self._sock.recv_into(buffer)

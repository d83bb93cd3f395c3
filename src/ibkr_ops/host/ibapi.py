"""Minimal TWS/Gateway API wire client: just enough to prove a Gateway is logged in.

The probe does what a trading bot needs to work: handshake, `startApi`, wait for
`managedAccounts` and `nextValidId`, then one `reqCurrentTime` round trip. A port that
accepts TCP but never answers fails here, with the stage it stopped at. Standard library
only, one socket, one deadline for the whole probe.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ibkr_ops.errors import OpsError

# Text framing only: from server version 201 message ids become binary.
MIN_VERSION = 157
MAX_VERSION = 176

MSG_ERROR = 4
MSG_NEXT_VALID_ID = 9
MSG_MANAGED_ACCOUNTS = 15
MSG_CURRENT_TIME = 49
MSG_START_API = 71

CLIENT_ID_IN_USE = 326
# Farm status notices every healthy Gateway sends at connect.
_INFO_CODES = range(2100, 2200)


class ProbeError(OpsError):
    """The API did not prove healthy; `stage` says where it stopped."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


class ClientIdInUse(ProbeError):
    """Error 326: another API client (usually the bot) holds this clientId."""


@dataclass(frozen=True)
class ApiStatus:
    """What a successful probe learned."""

    server_version: int
    accounts: tuple[str, ...]
    server_time: int
    client_id: int
    notices: tuple[str, ...] = field(default=())


class _Wire:
    """Length-prefixed, NUL-separated frames over one socket, bounded by one deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def send(self, *fields: object) -> None:
        payload = b"".join(str(f).encode() + b"\0" for f in fields)
        self.send_raw(_prefixed(payload))

    def send_raw(self, data: bytes) -> None:
        self._arm()
        self.sock.sendall(data)

    def read(self) -> list[str]:
        """The next frame's fields; raises EOFError when the server closes the connection."""
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + size:
                    payload, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
                    return payload.decode("utf-8", "replace").split("\0")[:-1]
            self._arm()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)


def probe(host: str, port: int, client_id: int, timeout: float, *, tries: int = 3) -> ApiStatus:
    """Probe the API; on 326 try the next clientIds (up to `tries` in all) within `timeout`."""
    sock, _, status = _open(host, port, client_id, timeout, tries)
    sock.close()
    return status


class Session:
    """A logged-in API connection held open, to see the Gateway drop it (a restart)."""

    def __init__(self, wire: _Wire, status: ApiStatus) -> None:
        self._wire = wire
        self.status = status

    def wait_closed(self, timeout: float) -> bool:
        """True once the Gateway closes the connection; False if it is still open at timeout."""
        self._wire.deadline = time.monotonic() + timeout
        try:
            while True:
                self._wire.read()
        except (EOFError, ConnectionError):
            return True
        except (TimeoutError, OSError):
            return False


@contextmanager
def session(host: str, port: int, client_id: int, timeout: float, *,
            tries: int = 3) -> Iterator[Session]:
    """A probe that stays connected; the socket closes when the block ends."""
    sock, wire, status = _open(host, port, client_id, timeout, tries)
    with sock:
        yield Session(wire, status)


def _open(host: str, port: int, client_id: int, timeout: float,
          tries: int) -> tuple[socket.socket, _Wire, ApiStatus]:
    deadline = time.monotonic() + timeout
    in_use: list[int] = []
    for attempt in range(tries):
        cid = client_id + attempt
        try:
            return _open_once(host, port, cid, deadline)
        except ClientIdInUse:
            in_use.append(cid)
    ids = ", ".join(map(str, in_use))
    raise ClientIdInUse(
        "login",
        f"clientId {ids} already in use by other API clients; "
        "set health_client_id (or --client-id) to a free id",
    )


def _open_once(host: str, port: int, client_id: int,
               deadline: float) -> tuple[socket.socket, _Wire, ApiStatus]:
    """Connect, handshake, log in and ask the time; the caller owns the open socket."""
    stage = "connect"
    sock: socket.socket | None = None
    try:
        remaining = max(deadline - time.monotonic(), 0.001)
        sock = socket.create_connection((host, port), timeout=remaining)
        wire = _Wire(sock, deadline)
        stage = "handshake"
        version = _handshake(wire)
        stage = "login"
        accounts, notices = _start_api(wire, client_id)
        stage = "currentTime"
        wire.send(MSG_CURRENT_TIME, 1)
        server_time = _wait_for(wire, MSG_CURRENT_TIME)
        return sock, wire, ApiStatus(version, accounts, int(server_time[2]), client_id, notices)
    except BaseException as exc:
        if sock is not None:
            sock.close()
        raise _stage_error(stage, exc) from None


def _stage_error(stage: str, exc: BaseException) -> BaseException:
    """Translate a low-level failure into a ProbeError naming the stage; others pass."""
    if isinstance(exc, ProbeError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProbeError(stage, f"no answer at the {stage} stage before the timeout")
    if isinstance(exc, EOFError):
        return ProbeError(stage, f"the Gateway closed the connection at the {stage} stage")
    if isinstance(exc, IndexError | ValueError):
        return ProbeError(stage, f"malformed reply at the {stage} stage")
    if isinstance(exc, OSError):
        return ProbeError(stage, f"{stage} failed: {exc.strerror or exc}")
    return exc


def _handshake(wire: _Wire) -> int:
    wire.send_raw(b"API\0" + _prefixed(f"v{MIN_VERSION}..{MAX_VERSION}".encode()))
    while True:
        fields = wire.read()
        if len(fields) == 2:
            version = int(fields[0])
            if version < MIN_VERSION:
                raise ProbeError(
                    "handshake", f"server version {version} is older than {MIN_VERSION}"
                )
            return version


def _start_api(wire: _Wire, client_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    wire.send(MSG_START_API, 2, client_id, "")
    accounts: tuple[str, ...] | None = None
    have_next_id = False
    notices: list[str] = []
    while accounts is None or not have_next_id:
        try:
            fields = wire.read()
        except EOFError:
            last = f" (last message: {notices[-1]})" if notices else ""
            raise ProbeError(
                "login", f"the Gateway closed the connection during login{last}"
            ) from None
        msg = int(fields[0])
        if msg == MSG_MANAGED_ACCOUNTS:
            accounts = tuple(a for a in fields[2].split(",") if a)
        elif msg == MSG_NEXT_VALID_ID:
            have_next_id = True
        elif msg == MSG_ERROR:
            code, text = int(fields[3]), fields[4]
            if code == CLIENT_ID_IN_USE:
                raise ClientIdInUse("login", text)
            if code not in _INFO_CODES:
                notices.append(f"{code} {text}")
    if not accounts:
        raise ProbeError("login", "the Gateway reports no managed accounts (not logged in?)")
    return accounts, tuple(notices)


def _wait_for(wire: _Wire, msg_id: int) -> list[str]:
    while True:
        fields = wire.read()
        if int(fields[0]) == msg_id:
            return fields


def _prefixed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload

"""Minimal TWS/Gateway API wire client: just enough to prove a Gateway is logged in.

The probe does what a trading bot needs to work: handshake, `startApi`, wait for
`managedAccounts` and `nextValidId`, then one `reqCurrentTime` round trip. A port that
accepts TCP but never answers fails here, with the stage it stopped at. On the way it keeps
the status messages the Gateway sends at connect about its own link to IBKR and its data
farms (see `upstream`). Standard library only, one socket, one deadline for the whole probe.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ibkr_ops.errors import OpsError
from ibkr_ops.host import upstream

# Text framing only: from server version 201 message ids become binary.
MIN_VERSION = 157
MAX_VERSION = 176

MSG_ERROR = 4
MSG_NEXT_VALID_ID = 9
MSG_MANAGED_ACCOUNTS = 15
MSG_CURRENT_TIME = 49
MSG_START_API = 71

CLIENT_ID_IN_USE = 326
# Informational notices (2100-2199, the farm status among them) are not problems of the API.
_INFO_CODES = range(2100, 2200)
# With its link to IBKR lost, a Gateway may leave requests that need IBKR unanswered: the
# current time is awaited this long, and its absence is then the upstream layer's news.
LOST_TIME_WAIT_S = 2.0
# Farm status follows nextValidId; should the time come first, the status gets this long.
FARM_WAIT_S = 0.25


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
    # None: not answered while the Gateway reported its link to IBKR lost.
    server_time: int | None
    client_id: int
    notices: tuple[str, ...] = field(default=())
    # (code, text) of the link and farm status messages, in the order they came.
    status_messages: tuple[tuple[int, str], ...] = field(default=())


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
            frame = self._frame()
            if frame is not None:
                return frame
            self._arm()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def arrived(self) -> list[list[str]]:
        """Every frame that has already arrived, without waiting for more."""
        self.sock.setblocking(False)
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except (BlockingIOError, InterruptedError):
            pass
        frames = []
        while (frame := self._frame()) is not None:
            frames.append(frame)
        return frames

    def _frame(self) -> list[str] | None:
        if len(self.buffer) >= 4:
            (size,) = struct.unpack(">I", self.buffer[:4])
            if len(self.buffer) >= 4 + size:
                payload, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
                return payload.decode("utf-8", "replace").split("\0")[:-1]
        return None

    def read_within(self, seconds: float) -> list[str] | None:
        """The next frame if it comes within `seconds` (and the deadline); None if not."""
        deadline, self.deadline = self.deadline, min(self.deadline, time.monotonic() + seconds)
        try:
            return self.read()
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
            return None
        finally:
            self.deadline = deadline

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


@contextlib.contextmanager
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
        statuses: list[tuple[int, str]] = []
        accounts, notices = _start_api(wire, client_id, statuses)
        stage = "currentTime"
        wire.send(MSG_CURRENT_TIME, 1)
        server_time = _current_time(wire, statuses)
        return sock, wire, ApiStatus(version, accounts, server_time, client_id, notices,
                                     tuple(statuses))
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


def _start_api(wire: _Wire, client_id: int,
               statuses: list[tuple[int, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
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
            if code in upstream.CODES:
                statuses.append((code, text))
            elif code not in _INFO_CODES:
                notices.append(f"{code} {text}")
    if not accounts:
        raise ProbeError("login", "the Gateway reports no managed accounts (not logged in?)")
    return accounts, tuple(notices)


def _current_time(wire: _Wire, statuses: list[tuple[int, str]]) -> int | None:
    """The server time, keeping the status messages that come meanwhile and those already
    there after it. None when the link to IBKR is reported lost and no time comes."""
    server_time: int | None = None
    while server_time is None:
        lost = not upstream.read(statuses).connected
        fields = wire.read_within(LOST_TIME_WAIT_S) if lost else wire.read()
        if fields is None:
            break
        server_time = _status_or_time(fields, statuses)
    frames: list[list[str]] = []
    # The probe has its answer: a closed connection or the deadline from here on ends only
    # the collection of status messages.
    with contextlib.suppress(EOFError, OSError):
        frames = wire.arrived()
        if not statuses and not frames:
            late = wire.read_within(FARM_WAIT_S)
            frames = [late, *wire.arrived()] if late is not None else []
    for fields in frames:
        _status_or_time(fields, statuses)
    return server_time


def _status_or_time(fields: list[str], statuses: list[tuple[int, str]]) -> int | None:
    """Keep a status message; return the time from a currentTime message; ignore the rest."""
    msg = int(fields[0])
    if msg == MSG_ERROR and int(fields[3]) in upstream.CODES:
        statuses.append((int(fields[3]), fields[4]))
    elif msg == MSG_CURRENT_TIME:
        return int(fields[2])
    return None


def _prefixed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload

"""The login record: one JSON object per line, appended by every simulated Gateway.

Format (``ibkr-gateway-sim-logins.jsonl``; the path is ``--logins-file``, the environment
variable ``IBKR_GATEWAY_SIM_LOGINS``, or by default ``<settings dir>/ibkr-gateway-sim-logins.jsonl``)::

    {"ts": 1764000000.123, "event": "login", "account": "U1234567", "user": "jdoe",
     "mode": "live", "warm": false, "instance": "4f…", "pid": 4242, "host": "gw1",
     "api_port": 4001}

``event`` is ``login`` (the session is held from here on) or ``logout`` (released: STOP,
SIGTERM, a warm restart's shutdown, the session taken by another login). ``instance`` is
unique per process. A process killed with SIGKILL (the ``crash-after`` fault) never writes
its ``logout``: its session stays open until the next login of that account on the same
host finds the process gone and writes the ``logout`` for it (``"reason": "stale"``), which
is when IB drops a stale session. Several files (one per host) can be checked together:
``ibkr-gateway-sim logins FILE...`` exits 1 when two processes held one account at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


def record(path: Path, event: str, **fields: object) -> None:
    """Append one event; a single ``write`` of one line keeps concurrent writers whole."""
    entry = {"ts": round(time.time(), 3), "event": event, "pid": os.getpid(),
             "host": socket.gethostname(), **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(paths: Iterable[Path]) -> list[dict[str, object]]:
    """Every event of every file, oldest first (lines that are not JSON are skipped)."""
    events: list[dict[str, object]] = []
    for path in paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                events.append(entry)
    events.sort(key=lambda e: float(e.get("ts", 0)))  # type: ignore[arg-type]
    return events


@dataclass(frozen=True)
class Session:
    """One account held by one Gateway process from ``start`` to ``end`` (None: still held)."""

    account: str
    instance: str
    host: str
    user: str
    start: float
    end: float | None


def sessions(paths: Iterable[Path]) -> list[Session]:
    """Turn the events into sessions (see the module docstring for stale sessions)."""
    open_: dict[tuple[str, str], dict[str, object]] = {}
    done: list[Session] = []

    def close(key: tuple[str, str], at: float) -> None:
        entry = open_.pop(key)
        done.append(Session(str(entry["account"]), key[1], str(entry.get("host", "")),
                            str(entry.get("user", "")), float(entry["ts"]), at))  # type: ignore[arg-type]

    for event in read(paths):
        account = str(event.get("account", ""))
        key = (account, str(event.get("instance", "")))
        ts = float(event.get("ts", 0))  # type: ignore[arg-type]
        if event.get("event") == "login":
            if key in open_:
                close(key, ts)
            open_[key] = event
        elif event.get("event") == "logout" and key in open_:
            close(key, ts)
    for key in list(open_):
        entry = open_.pop(key)
        done.append(Session(key[0], key[1], str(entry.get("host", "")),
                            str(entry.get("user", "")), float(entry["ts"]), None))  # type: ignore[arg-type]
    return sorted(done, key=lambda s: s.start)


def close_stale(path: Path, account: str) -> int:
    """Before a login: end the open sessions of processes on this host that are gone.

    A process killed without logging out keeps its session until the same account logs in
    again, when IB drops the stale one; the ``logout`` written here (reason ``stale``) marks
    that moment. Returns how many were closed.
    """
    host = socket.gethostname()
    closed = 0
    for session in sessions([path]):
        if session.account != account or session.end is not None or session.host != host:
            continue
        pid = _pid_of(path, session.instance)
        if pid is not None and not _alive(pid):
            record(path, "logout", account=account, user=session.user, instance=session.instance,
                   reason="stale", stale_pid=pid)
            closed += 1
    return closed


def _pid_of(path: Path, instance: str) -> int | None:
    for event in read([path]):
        pid = event.get("pid")
        if event.get("instance") == instance and isinstance(pid, int):
            return pid
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def overlaps(paths: Iterable[Path]) -> list[tuple[Session, Session]]:
    """Pairs of sessions of different processes that held one account at the same time."""
    found: list[tuple[Session, Session]] = []
    all_sessions = sessions(paths)
    for i, first in enumerate(all_sessions):
        for second in all_sessions[i + 1:]:
            if first.account != second.account or first.instance == second.instance:
                continue
            first_end = float("inf") if first.end is None else first.end
            if second.start < first_end:
                found.append((first, second))
    return found

"""Find the Gateway's process and read its memory and age from /proc (Linux only).

On a systemd host the Gateway is the largest process in its unit's cgroup (the JVM, not
IBC's shell wrappers); elsewhere, e.g. a simulator on a developer machine, it is whoever
listens on the API port.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.systemd import UnitState

_LISTEN = "0A"
_ESTABLISHED = "01"
_MB = 1024 * 1024
# Addresses that mean "this machine" when given as the API host (no socket binds here).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")  # noqa: S104


@dataclass(frozen=True)
class Snapshot:
    """The Gateway process at one moment: what a restart reclaims is the difference."""

    pid: int
    rss_mb: float
    uptime_s: float


def locate(config: HostConfig, unit: UnitState | None) -> tuple[int | None, str]:
    """(pid or None, where it was looked for): the unit's cgroup, else the API port's owner.

    None with an empty description means the API host is another machine.
    """
    if unit is not None and unit.control_group:
        return largest_in_cgroup(unit.control_group), f"in {unit.name}"
    if config.api_host not in LOCAL_HOSTS:
        return None, ""
    return listener_pid(config.api_port), f"listening on port {config.api_port}"


def snapshot(config: HostConfig, unit: UnitState | None) -> Snapshot | None:
    """pid, resident memory and age of the Gateway, or None when there is none."""
    pid, _ = locate(config, unit)
    if pid is None:
        return None
    rss, age = rss_bytes(pid), uptime_s(pid)
    if rss is None or age is None:
        return None
    return Snapshot(pid, rss / _MB, age)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def listener_pid(port: int) -> int | None:
    """PID of the process with a listening TCP socket on `port` (any address), if visible."""
    inodes = _listening_sockets(port)
    if not inodes:
        return None
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(_readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return pid
        except OSError:
            continue
    return None


def has_listener(port: int) -> bool:
    """Whether any process listens on TCP `port`: readable by every user, unlike its owner."""
    return bool(_listening_sockets(port))


def clients_of(port: int) -> int:
    """Established TCP connections to the local `port`: the API clients connected right now."""
    return len(_sockets(port, _ESTABLISHED))


def _listening_sockets(port: int) -> set[str]:
    return {f"socket:[{cols[9]}]" for cols in _sockets(port, _LISTEN)}


def _sockets(port: int, tcp_state: str) -> list[list[str]]:
    """The /proc/net/tcp{,6} rows of sockets on local `port` in a TCP state (hex code)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = _read(table).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == tcp_state and int(cols[1].rsplit(":", 1)[1], 16) == port:
                rows.append(cols)
    return rows


def largest_in_cgroup(control_group: str) -> int | None:
    """The process with the largest resident set in a cgroup v2 group (and its children)."""
    # Pure cgroup v2 mounts the group at /sys/fs/cgroup; a hybrid hierarchy (containers on
    # older hosts) keeps v2 under unified/ and systemd's own tree under systemd/.
    relative = control_group.lstrip("/")
    roots = [os.path.join("/sys/fs/cgroup", sub, relative) for sub in ("", "unified", "systemd")]
    root = next((r for r in roots if os.path.exists(os.path.join(r, "cgroup.procs"))), roots[0])
    pids: list[int] = []
    for folder, _, files in os.walk(root):
        if "cgroup.procs" not in files:
            continue
        try:
            pids += [int(p) for p in _read(os.path.join(folder, "cgroup.procs")).split()]
        except OSError:
            continue
    sizes = [(rss_bytes(pid) or 0, pid) for pid in pids]
    return max(sizes)[1] if sizes else None


def rss_bytes(pid: int) -> int | None:
    """Resident set size, or None when the process is gone."""
    try:
        resident = _read(f"/proc/{pid}/statm").split()[1]
    except (OSError, IndexError):
        return None
    return int(resident) * _PAGE


def uptime_s(pid: int) -> float | None:
    """Seconds since the process started, or None when it is gone."""
    try:
        stat = _read(f"/proc/{pid}/stat")
        uptime = float(_read("/proc/uptime").split()[0])
    except OSError:
        return None
    # Field 22 (starttime, clock ticks since boot) counted after the ")" closing comm.
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def name(pid: int) -> str:
    """Short command name (`java`, `python3`), or "?" when it is gone."""
    try:
        return _read(f"/proc/{pid}/comm").strip()
    except OSError:
        return "?"


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""

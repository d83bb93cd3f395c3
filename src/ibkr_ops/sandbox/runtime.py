"""Reading a guest's live state from /proc and running commands inside it with nsenter."""

from __future__ import annotations

import subprocess
from pathlib import Path

SUPERVISOR_MODULE = "ibkr_ops.sandbox.supervisor"
UP_STATES = ("running", "degraded")


def live_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in `pidfile` if that process is alive and its command line has `marker`.

    The marker guards against a recycled pid that now belongs to something else.
    """
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if marker.encode() in cmdline else None


def leader(nspawn_pid: int) -> int | None:
    """The guest's init: the child of its nspawn process."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def inside(pid: int, argv: list[str], *, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run a command in every namespace of the guest whose init is `pid` (no SSH needed)."""
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-a", *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def system_state(pid: int) -> str | None:
    """`systemctl is-system-running` in the guest, or None while it cannot answer yet."""
    try:
        done = inside(pid, ["systemctl", "is-system-running"], timeout=10)
    except subprocess.TimeoutExpired:
        return None
    word = done.stdout.strip()
    return word if word and " " not in word else None


def failed_units(pid: int) -> list[str]:
    """Names of the guest's failed units (for a `degraded` report)."""
    done = inside(pid, ["systemctl", "list-units", "--failed", "--plain", "--no-legend"])
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]

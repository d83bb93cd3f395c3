"""systemctl commands the remote steps run, built in one place so plans can be read as text.

Pure: unit names in, a shell command out. Quiet forms only: output goes nowhere a secret
could be shown, and failures are judged by exit status.
"""

from __future__ import annotations

from collections.abc import Iterable


def _units(units: Iterable[str]) -> str:
    return " ".join(units)


def daemon_reload() -> str:
    return "systemctl daemon-reload"


def enable(units: Iterable[str]) -> str:
    return f"systemctl enable --quiet {_units(units)}"


def control(verb: str, units: Iterable[str]) -> str:
    """A job on units: start, restart, stop."""
    return f"systemctl {verb} {_units(units)}"


def start(units: Iterable[str]) -> str:
    return control("start", units)


def restart(units: Iterable[str]) -> str:
    return control("restart", units)


def reset_failed(unit: str) -> str:
    """Clear a failed unit's result and start limit, so the next start is not refused."""
    return f"systemctl reset-failed {unit} 2>/dev/null"


def is_active(unit: str) -> str:
    return f"systemctl is-active {unit}"


def afresh(verb: str, unit: str) -> str:
    """``verb`` (start, restart) a unit that may have failed, its failed state cleared first."""
    return f"{reset_failed(unit)}; {control(verb, [unit])}"


def disable_now(units: Iterable[str], failed: str) -> str:
    """Stop and disable units (the stop waits for each unit's TimeoutStopSec), then clear
    ``failed``'s failed state so a later start is clean."""
    return (f"systemctl disable --now --quiet {_units(units)} && "
            f"{{ {reset_failed(failed)} || true; }}")

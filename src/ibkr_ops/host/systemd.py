"""The few systemd queries the host tools make, through `systemctl` (no D-Bus bindings).

One `systemctl show` call answers for several units at once, so a health check costs a
single process start for all its systemd layers.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from ibkr_ops.errors import OpsError

_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "MainPID", "ControlGroup",
               "ActiveEnterTimestamp", "NRestarts", "ExecMainCode", "ExecMainStatus")
# ExecMainCode is a siginfo code: the main process exited, was killed or dumped core.
_EXIT_KINDS = {1: "exited", 2: "killed", 3: "dumped"}


def is_systemd_host() -> bool:
    """sd_booted(3): systemd is PID 1 exactly when /run/systemd/system/ exists."""
    return os.path.isdir("/run/systemd/system")


@dataclass(frozen=True)
class UnitState:
    """A unit as `systemctl show` reports it; `active_since` is epoch seconds or None."""

    name: str
    load_state: str
    active_state: str
    sub_state: str
    main_pid: int
    control_group: str
    active_since: float | None
    # Automatic restarts (Restart=) since the unit was last started by hand; a crash counter.
    n_restarts: int = 0
    last_exit: str = ""

    @property
    def active(self) -> bool:
        return self.active_state == "active"

    def describe(self) -> str:
        if self.load_state != "loaded":
            return f"{self.name} is {self.load_state}"
        return f"{self.name} {self.active_state} ({self.sub_state})"


def show_units(*units: str, timeout: float = 5.0) -> list[UnitState]:
    """State of each unit, in the order given."""
    try:
        out = subprocess.run(
            ["systemctl", "show", "--timestamp=unix", "-p", ",".join(_PROPERTIES), "--", *units],
            capture_output=True, text=True, timeout=timeout, check=True,
        ).stdout
    except subprocess.CalledProcessError as exc:
        # systemctl's own last words ("Failed to connect to bus: ..."), not its argv.
        reason = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        raise OpsError(f"systemctl show failed: {reason[0]}") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise OpsError(f"systemctl show failed: {exc}") from None
    return parse_units(out, units)


def parse_units(out: str, units: tuple[str, ...]) -> list[UnitState]:
    """`systemctl show` output for several units: blocks separated by a blank line."""
    blocks = [b for b in out.split("\n\n") if b.strip()]
    if len(blocks) != len(units):
        raise OpsError(f"systemctl show answered for {len(blocks)} of {len(units)} units")
    return [_parse(name, block) for name, block in zip(units, blocks, strict=True)]


def parse_show(text: str) -> dict[str, str]:
    """KEY=VALUE lines of `systemctl show` into a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _parse(name: str, block: str) -> UnitState:
    props = parse_show(block)
    stamp = props.get("ActiveEnterTimestamp", "")
    return UnitState(
        name=props.get("Id") or name,
        load_state=props.get("LoadState", "unknown"),
        active_state=props.get("ActiveState", "unknown"),
        sub_state=props.get("SubState", "unknown"),
        main_pid=int(props.get("MainPID") or 0),
        control_group=props.get("ControlGroup", ""),
        active_since=float(stamp[1:]) if stamp.startswith("@") else None,
        n_restarts=int(props.get("NRestarts") or 0),
        last_exit=_last_exit(props.get("ExecMainCode", ""), props.get("ExecMainStatus", "")),
    )


def _last_exit(code: str, status: str) -> str:
    """How the last main process ended, as a person reads it: "exited 1", "killed by signal 9"."""
    kind = _EXIT_KINDS.get(int(code) if code.isdigit() else 0)
    if kind is None:
        return ""
    return f"exited {status}" if kind == "exited" else f"{kind} by signal {status}"


def restart_unit(unit: str, timeout: float) -> None:
    """`systemctl restart UNIT`, waiting for the start job (bounded by `timeout`)."""
    control("restart", unit, timeout)


def control(verb: str, unit: str, timeout: float, *, block: bool = True,
            options: tuple[str, ...] = ()) -> None:
    """`systemctl VERB UNIT` (start, stop, restart, kill); `block=False` only queues the job."""
    argv = ["systemctl", verb, *([] if block else ["--no-block"]), *options, "--", unit]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                check=False)
    except subprocess.TimeoutExpired:
        raise OpsError(f"systemctl {verb} {unit} did not finish in {timeout:.0f} s") from None
    except OSError as exc:
        raise OpsError(f"systemctl {verb} {unit} failed: {exc}") from None
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        raise OpsError(f"systemctl {verb} {unit} failed: {reason[0]}")


def stop_now(unit: str, timeout: float) -> None:
    """Stop without the unit's stop grace: the stop job first, so systemd does not restart what
    the kill ends, then SIGKILL to every process of the unit, then wait for the job. For a
    Gateway that cannot log out anyway (a rejected login, a JVM that no longer runs)."""
    control("stop", unit, timeout, block=False)
    control("kill", unit, timeout, options=("--kill-who=all", "--signal=SIGKILL"))
    control("stop", unit, timeout)


def show_unit(unit: str) -> UnitState | None:
    """The unit's state on a systemd host; None elsewhere (the caller falls back)."""
    return show_units(unit)[0] if is_systemd_host() else None

"""The daily Gateway restart: warm through IBC's command server, cold through systemd.

Warm (`RESTART` to IBC) keeps the session token, so no second-factor prompt; it is what
Monday to Friday should use. Cold (`systemctl restart`) is a new login with a second factor,
needed once a week after IBKR's Sunday 01:00 ET token reset, and the fallback when a warm
restart does not come back healthy in time. Either way the wait for a healthy API is
bounded, and the result (mode, duration, memory before and after) is reported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ibkr_ops.errors import OpsError
from ibkr_ops.host import history, ibapi, loginlock, market, proc, state, systemd
from ibkr_ops.host.config import HostConfig

POLL_S = 1.0
FALLBACK = "warm, then cold"
SUNDAY = 6
TOKEN_RESET = dt.time(1, 0)

MARKER_FILE = "restart.json"

Progress = Callable[[str], None]


@contextlib.contextmanager
def in_progress(config: HostConfig) -> Iterator[None]:
    """Mark a restart as running, so the health check holds its alerts meanwhile.

    The marker carries its own expiry (both timeouts), so a runner killed mid-way cannot
    silence the health check for longer than a restart may take.
    """
    path = Path(config.state_dir) / MARKER_FILE
    other = (state.read_state(path) or {}).get("pid")
    if restarting(config) and isinstance(other, int) and other != os.getpid() \
            and os.path.exists(f"/proc/{other}"):
        raise OpsError(f"another Gateway restart is under way (pid {other}); try again later")
    until = time.time() + config.warm_restart_timeout_s + config.cold_restart_timeout_s + 60
    state.write_state(path, {"pid": os.getpid(), "until": until})
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def restarting(config: HostConfig) -> bool:
    """Whether a restart runner's marker is present and not expired."""
    marker = state.read_state(Path(config.state_dir) / MARKER_FILE) or {}
    until = marker.get("until")
    return isinstance(until, int | float) and time.time() < until


@dataclass(frozen=True)
class Outcome:
    """What the restart did and how it ended."""

    mode: str
    healthy: bool
    seconds: float
    steps: tuple[str, ...]
    before: dict[str, Any] | None
    after: proc.Snapshot | None

    def report(self) -> tuple[str, str]:
        """(level, text) for the notification after the restart."""
        head = (f"Gateway restart ({self.mode}) "
                f"{'done' if self.healthy else 'FAILED'} in {self.seconds:.0f} s")
        lines = [head, *self.steps]
        if self.before:
            lines.append(f"before: {self.before['rss_mb']:.0f} MB resident, "
                         f"up {_duration(self.before['uptime_s'])}")
        if self.after:
            lines.append(f"after: {self.after.rss_mb:.0f} MB resident")
        if self.before and self.after:
            lines.append(f"reclaimed: {self.before['rss_mb'] - self.after.rss_mb:.0f} MB")
        if not self.healthy:
            return "error", "\n".join(lines)
        return ("warning" if self.mode == FALLBACK else "info"), "\n".join(lines)


def last_token_reset(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The most recent Sunday 01:00 in the market's zone at or before `now`."""
    local = now.astimezone(zone)
    sunday = local.date() - dt.timedelta(days=(local.weekday() - SUNDAY) % 7)
    reset = dt.datetime.combine(sunday, TOKEN_RESET, zone)
    return reset if reset <= local else reset - dt.timedelta(days=7)


def choose_mode(config: HostConfig, now: dt.datetime,
                unit: systemd.UnitState | None) -> tuple[str, str]:
    """(warm|cold, why). Auto goes cold when the unit was last (cold) started before the
    last token reset: warm restarts happen inside the unit, so systemd's start time is the
    last full login."""
    if config.restart_mode != "auto":
        return config.restart_mode, f"restart_mode is {config.restart_mode}"
    if unit is None:
        return "warm", "not a systemd host: only a warm restart is possible"
    if not unit.active or unit.active_since is None:
        return "cold", f"{unit.describe()}: it needs a start"
    zone = market.check_timezone(config.market_timezone)
    reset = last_token_reset(now, zone)
    started = dt.datetime.fromtimestamp(unit.active_since, zone)
    if started < reset:
        return "cold", (f"last login {started:%a %Y-%m-%d %H:%M} is before the weekly token "
                        f"reset {reset:%a %Y-%m-%d %H:%M}")
    return "warm", f"logged in since {started:%a %Y-%m-%d %H:%M}, after the token reset"


def send_command(host: str, port: int, command: str, timeout: float = 10.0) -> str:
    """Send one IBC command-server command; return its first OK/ERROR line."""
    try:
        return _exchange(host, port, command, timeout)
    except OSError as exc:
        raise OpsError(f"IBC command server {host}:{port}: {exc.strerror or exc} "
                       "(is CommandServerPort set in config.ini?)") from None


def jvm_responds(config: HostConfig, timeout: float) -> tuple[bool | None, str]:
    """Does the Gateway's JVM still run code? IBC's command server lives in it, and `EXIT`
    (close this connection, nothing else) is a question without side effects.

    True: it answered. False: it took the connection but said nothing within `timeout`, the
    mark of a frozen JVM (the kernel accepts for a process that no longer runs). None:
    nothing to ask (no listener, or an error), so this says nothing about the JVM.
    """
    host, port = config.command_server_host, config.command_server_port
    try:
        reply = _exchange(host, port, "EXIT", timeout)
    except TimeoutError:
        return False, f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as exc:
        return None, f"{host}:{port}: {exc.strerror or exc}"
    return True, f"{host}:{port} answered {reply!r}"


def _exchange(host: str, port: int, command: str, timeout: float) -> str:
    """One command, its first OK/ERROR line; OSError (TimeoutError included) passes."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        reader = sock.makefile("r", encoding="utf-8", newline=None)
        for line in reader:
            if line.startswith(("OK", "ERROR")):
                return line.rstrip("\r\n")
    raise OSError(f"closed without answering {command}")


def run_recorded(config: HostConfig, mode: str, cause: str, before: dict[str, Any] | None,
                 progress: Progress, *, api_down: bool = False,
                 stop_at_once: bool = False) -> tuple[Outcome, history.Restart, list[str]]:
    """A restart as the host keeps it: marked in progress, recorded in the history with its
    cause, and, when it failed, the Gateway's log lines from its time that explain why."""
    with in_progress(config):
        outcome = run(config, mode, before, progress, api_down=api_down,
                      stop_at_once=stop_at_once)
    entry = history.Restart(time.time(), cause, outcome.mode, outcome.healthy, outcome.seconds,
                            before["rss_mb"] if before else None,
                            outcome.after.rss_mb if outcome.after else None)
    history.record(config, entry)
    lines: list[str] = []
    if not outcome.healthy:
        from ibkr_ops.host import ibclog  # noqa: PLC0415 - only a failure reads the journal

        lines = ibclog.recent(config.gateway_unit, since=entry.at - outcome.seconds - 5,
                              lines=15)
    return outcome, entry, lines


def run(config: HostConfig, mode: str, before: dict[str, Any] | None, progress: Progress,
        *, api_down: bool = False, stop_at_once: bool = False) -> Outcome:
    """Restart in `mode` (warm falls back to cold on a systemd host); wait until healthy.

    `api_down`: the caller knows the API does not answer, so no connection is held to see
    the old Gateway go. `stop_at_once`: the JVM does not respond, so a cold restart kills it
    instead of waiting out the stop grace for a logout that cannot happen.
    """
    started = time.monotonic()
    steps: list[str] = []
    healthy = False
    used = mode
    if mode == "warm":
        healthy = _warm(config, steps, progress, api_down)
        if not healthy and systemd.is_systemd_host():
            used = FALLBACK
            steps.append("falling back to a cold restart")
    if mode == "cold" or used != mode:
        healthy = _cold(config, steps, progress, stop_at_once)
    after = proc.snapshot(config, systemd.show_unit(config.gateway_unit)) if healthy else None
    return Outcome(used, healthy, time.monotonic() - started, tuple(steps), before, after)


def _warm(config: HostConfig, steps: list[str], progress: Progress, api_down: bool) -> bool:
    deadline = time.monotonic() + config.warm_restart_timeout_s
    with contextlib.ExitStack() as stack:
        # A logged-in connection held across the command: its closing proves the old
        # Gateway went away, so a quick probe cannot mistake it for the restarted one.
        watch: ibapi.Session | None = None
        if api_down:
            steps.append("API down before the restart (the health check's probes)")
        else:
            try:
                watch = stack.enter_context(ibapi.session(
                    config.api_host, config.api_port, config.health_client_id,
                    config.health_timeout_s))
            except ibapi.ProbeError as exc:
                steps.append(f"API already down before the restart ({exc})")
        try:
            reply = send_command(config.command_server_host, config.command_server_port,
                                 "RESTART")
        except OpsError as exc:
            steps.append(f"warm restart not possible: {exc}")
            return False
        steps.append(f"IBC: {reply}")
        if not reply.startswith("OK"):
            return False
        if watch is not None:
            progress("waiting for the Gateway to go down for its warm restart")
            if not watch.wait_closed(max(deadline - time.monotonic(), 0)):
                steps.append("the Gateway did not restart within "
                             f"{config.warm_restart_timeout_s:g} s")
                return False
    return _wait_healthy(config, deadline, steps, progress, "warm restart")


def _cold(config: HostConfig, steps: list[str], progress: Progress, stop_at_once: bool) -> bool:
    """A new login, one at a time on the host (``loginlock``): the lock is held from the
    restart until the API answers or the cold timeout, which starts once the lock is held."""
    if stop_at_once:
        # A frozen JVM holds no login worth waiting for: it goes before any wait.
        try:
            systemd.stop_now(config.gateway_unit, config.cold_restart_timeout_s)
        except OpsError as exc:
            steps.append(str(exc))
            return False
        steps.append(f"stopped {config.gateway_unit} at once (SIGKILL): the JVM does not "
                     "respond, so it cannot log out")
    with loginlock.held(config, steps, progress):
        deadline = time.monotonic() + config.cold_restart_timeout_s
        try:
            systemd.restart_unit(config.gateway_unit, config.cold_restart_timeout_s)
        except OpsError as exc:
            steps.append(str(exc))
            return False
        steps.append(f"systemctl restart {config.gateway_unit}")
        return _wait_healthy(config, deadline, steps, progress,
                             "cold restart: a second-factor approval may be waiting on your "
                             "phone")


def _wait_healthy(config: HostConfig, deadline: float, steps: list[str],
                  progress: Progress, what: str) -> bool:
    """Probe the API until it logs in or the deadline passes, printing progress."""
    start = time.monotonic()
    last = "not tried"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            steps.append(f"API not healthy after {time.monotonic() - start:.0f} s: {last}")
            return False
        try:
            status = ibapi.probe(config.api_host, config.api_port, config.health_client_id,
                                 min(config.health_timeout_s, remaining))
        except ibapi.ProbeError as exc:
            last = str(exc)
        else:
            steps.append(f"API healthy after {time.monotonic() - start:.0f} s "
                         f"(accounts {','.join(status.accounts)})")
            return True
        progress(f"waiting for the API ({what}): {time.monotonic() - start:.0f} s")
        time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0)))


def printer(stream: Any = sys.stdout) -> Progress:
    """Progress lines: rewritten in place on a terminal, one every 10 s otherwise."""
    tty = stream.isatty()
    last = [0.0]

    def show(text: str) -> None:
        now = time.monotonic()
        if tty:
            stream.write(f"\r\033[K{text}")
        elif now - last[0] >= 10:
            stream.write(text + "\n")
        else:
            return
        last[0] = now
        stream.flush()

    return show


def _duration(seconds: float) -> str:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"

"""`ibkr-health-check --history`: what the host remembers, in a few lines a person reads.

The last health check, the login, the watchdog's counters and hold, and the recent restarts
with their causes: what `invoke status --host` shows after the units and timers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ibkr_ops.host import alerts, history, loginwatch, state, watchdog
from ibkr_ops.host.config import HostConfig, metrics_path

SHOWN = 10


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float) or not epoch:
        return "never"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def text(config: HostConfig) -> str:
    """The report; every part says "none" rather than disappearing when there is nothing."""
    last = state.read_state(Path(config.state_dir) / alerts.STATE_FILE) or {}
    login = loginwatch.summary(config)
    ws = watchdog.WatchState.load(config)
    restarts = history.load(config)
    lines = [
        f"last alerted status: {last.get('status', 'none')} since {last.get('since', '-')}",
        f"login: {login['state']} since {_when(login['since'])}"
        + (f" ({login['detail']})" if login["detail"] else ""),
        f"last successful login: {_when(login['last_success'])}",
        f"watchdog: {ws.api_failures} failed API check(s) in a row, "
        f"{len(ws.crashes)} recent crash(es)"
        + (f", back-off until {_when(ws.backoff_until)}" if ws.backoff_until else "")
        + (f", automatic restarts OFF: {ws.hold}" if ws.hold else "")
        + (f", in IBKR's maintenance window {ws.maintenance} until "
           f"{_when(ws.maintenance_until)} (re-logins held)" if ws.maintenance else ""),
        f"restarts recorded: {len(restarts)} ("
        + ", ".join(f"{cause} {sum(r.cause == cause for r in restarts)}"
                    for cause in history.CAUSES) + ")",
    ]
    lines += [f"  {_when(r.at)}  {r.describe()}" for r in restarts[-SHOWN:]]
    lines.append(f"metrics: {metrics_path(config)}")
    return "\n".join(lines)

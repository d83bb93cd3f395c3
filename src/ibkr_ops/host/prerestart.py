"""May the Gateway restart now? Not in the regular US session, nor in a configured blackout,
nor in IBKR's maintenance windows (a new login there can fail or lock the account).

Runs as the restart service's ExecStartPre. The 16:30 timer is always after the close, so
this guards the other ways a restart starts: a `Persistent=` catch-up after boot, a manual
`systemctl start`, a changed timer. When the restart may go ahead it also records the
Gateway's memory and age, so the notification after the restart can say what it reclaimed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ibkr_ops.errors import UsageError
from ibkr_ops.host import market, proc, state, systemd
from ibkr_ops.host.config import HostConfig

RECORD_FILE = "prerestart.json"


@dataclass(frozen=True)
class Decision:
    """The verdict for one moment; `reason` is one sentence a user can act on."""

    allowed: bool
    reason: str
    now: dt.datetime


def parse_now(text: str, config: HostConfig) -> dt.datetime:
    """ISO-8601; a time without an offset is read in the market's time zone."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now {text!r} is not an ISO-8601 time "
                         "(e.g. 2026-11-25T16:30 or 2026-11-25T21:30:00+00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=market.check_timezone(config.market_timezone))
    return moment


def decide(now: dt.datetime, config: HostConfig) -> Decision:
    """Refuse inside [open - guard, close) on NYSE trading days and inside any blackout."""
    local = now.astimezone(market.check_timezone(config.market_timezone))
    day = local.date()
    extra = frozenset(market.parse_day(d, "extra_holidays") for d in config.extra_holidays)
    when = f"{local:%a %Y-%m-%d %H:%M} {config.market_timezone}"
    closed = _window_refusal(now, local, config)
    if closed:
        return Decision(False, f"{when} is inside {closed}", local)
    if not market.is_trading_day(day, extra):
        kind = "a weekend" if day.weekday() >= 5 else "an NYSE holiday"
        return Decision(True, f"{when} is {kind}: no regular session", local)
    guard = dt.timedelta(minutes=config.pre_open_guard_min)
    opens = dt.datetime.combine(day, market.OPEN, local.tzinfo)
    close = market.close_time(day)
    session = f"{market.OPEN:%H:%M}-{close:%H:%M}"
    if local < opens - guard:
        return Decision(True, f"{when} is before the session ({session}) and its "
                              f"{config.pre_open_guard_min} min guard", local)
    if local.time() >= close:
        return Decision(True, f"{when} is after the {close:%H:%M} close", local)
    if local < opens:
        return Decision(False, f"{when} is within {config.pre_open_guard_min} min of the "
                               f"{market.OPEN:%H:%M} open; restart after {close:%H:%M}", local)
    return Decision(False, f"{when} is inside the regular session ({session}); "
                           f"a restart may go ahead from {close:%H:%M}", local)


def _window_refusal(now: dt.datetime, local: dt.datetime, config: HostConfig) -> str:
    """The blackout or maintenance window that refuses a restart now, in words ("" if none)."""
    for window in map(market.parse_window, config.blackout_windows):
        if window.contains(local):
            return f"the blackout window {window.text!r}"
    found = maintenance(now, config)
    if found is not None:
        return (f"IBKR's maintenance window {found[0]!r}, where a new login can fail or lock "
                f"the account; restart from {found[1]:%H:%M}")
    return ""


def session_open(now: dt.datetime, config: HostConfig) -> dt.datetime | None:
    """The open of the regular session `now` is in (None outside one)."""
    local = now.astimezone(market.check_timezone(config.market_timezone))
    extra = frozenset(market.parse_day(d, "extra_holidays") for d in config.extra_holidays)
    day = local.date()
    opens = dt.datetime.combine(day, market.OPEN, local.tzinfo)
    if market.is_trading_day(day, extra) and \
            opens <= local < dt.datetime.combine(day, market.close_time(day), local.tzinfo):
        return opens
    return None


def maintenance(now: dt.datetime, config: HostConfig) -> tuple[str, dt.datetime] | None:
    """(window, its end in market time) when `now` is inside one of IBKR's maintenance
    windows and outside the regular session (which always wins: a session needs a Gateway)."""
    if session_open(now, config) is not None:
        return None
    local = now.astimezone(market.check_timezone(config.market_timezone))
    for text in config.maintenance_windows:
        window = market.parse_window(text, "maintenance_windows")
        if window.contains(local):
            return window.text, window.ends(local)
    return None


def record_gateway(config: HostConfig, now: dt.datetime) -> dict[str, Any] | None:
    """Store the Gateway's pid, memory and age before the restart; return what was stored."""
    snap = proc.snapshot(config, systemd.show_unit(config.gateway_unit))
    record = None if snap is None else {
        "pid": snap.pid, "rss_mb": round(snap.rss_mb, 1), "uptime_s": round(snap.uptime_s),
    }
    state.write_state(Path(config.state_dir) / RECORD_FILE,
                      {"at": now.isoformat(), "gateway": record})
    return record


def read_record(config: HostConfig, now: dt.datetime,
                max_age: dt.timedelta = dt.timedelta(minutes=30)) -> dict[str, Any] | None:
    """The Gateway as recorded before this restart, if the record is recent enough."""
    stored = state.read_state(Path(config.state_dir) / RECORD_FILE)
    if not stored or not isinstance(stored.get("gateway"), dict):
        return None
    try:
        at = dt.datetime.fromisoformat(str(stored["at"]))
    except (KeyError, ValueError):
        return None
    return dict(stored["gateway"]) if now - at <= max_age else None

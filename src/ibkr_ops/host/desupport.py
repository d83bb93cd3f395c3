"""Warn ahead of IBKR's desupport of the installed Gateway build, at most once a day.

The health check runs every half minute; a warning that is weeks ahead is worth one message a
day, not one a run, and it must not turn the Gateway's health to "warn" (a bot works fine
until the cutoff). So it is its own small step after the check: the installed build (the
host's `TWS_MAJOR_VRSN`), the minimum (IBKR's own notice if the Gateway or the login watch
saw one, else `IBKR_GATEWAY_MIN_VERSION` or the project's known cutoffs) and the day it last
said so (`<state_dir>/desupport.json`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host import gatewayversion, loginwatch, state
from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.envfile import read_env_file
from ibkr_ops.host.gatewayversion import Verdict, Version

STATE_FILE = "desupport.json"

Deliver = Callable[[HostConfig, str, str], object]


def installed(config: HostConfig) -> Version | None:
    """The build the Gateway unit starts (`TWS_MAJOR_VRSN`), or None when it cannot be read."""
    try:
        value = read_env_file(Path(config.credentials_file)).get("TWS_MAJOR_VRSN", "")
        return gatewayversion.parse(value) if value else None
    except OpsError:
        return None


def _ibkr_said(config: HostConfig, version: Version, today: dt.date,
               told: str) -> Verdict | None:
    """A verdict from IBKR's own notice, which names the date: as the Gateway told the health
    check's API connection (`told`), else as the login watch read it in IBC's log."""
    notice = gatewayversion.read_notice(told or loginwatch.LoginState.load(config).version_notice)
    if notice is None or notice.desupported_on is None or notice.desupported_on < today:
        return None
    if notice.minimum is not None and not version.below(notice.minimum):
        return None
    days = (notice.desupported_on - today).days
    floor = f"; the minimum from then on is {notice.minimum}" if notice.minimum else ""
    return Verdict("warning", (
        f"IBKR's own notice says IB Gateway {version} will be desupported on "
        f"{notice.desupported_on.isoformat()} (in {days} days){floor}. "
        + gatewayversion.UPGRADE_HINT))


def check(config: HostConfig, today: dt.date, warn_days: int = gatewayversion.WARN_DAYS,
          notice: str = "") -> Verdict | None:
    """What is due about the installed build today; the operator's `gateway_min_version`, if
    set, is the minimum (as in `gatewayversion.assess`), `notice` IBKR's notice as the
    Gateway's API told it (message 2172)."""
    version = installed(config)
    if version is None:
        return None
    floor = config.gateway_min_version
    minimum = gatewayversion.parse(floor) if floor else None
    known = gatewayversion.assess(version, today, minimum, warn_days)
    if known is not None and known.level == "error":
        return known
    return _ibkr_said(config, version, today, notice) or known


def daily(config: HostConfig, today: dt.date, deliver: Deliver, notice: str = "") -> str:
    """Send the day's warning if one is due and none went out today; words for the journal."""
    verdict = check(config, today, notice=notice)
    if verdict is None:
        return ""
    path = Path(config.state_dir) / STATE_FILE
    if (state.read_state(path) or {}).get("day") == today.isoformat():
        return "desupport warning already sent today"
    outcome = f"desupport {verdict.level} sent"
    try:
        deliver(config, verdict.level, verdict.text)
    except UsageError as exc:
        outcome = f"desupport {verdict.level} not sent: {exc}"  # no webhook: say it once a day
    except OpsError as exc:
        return f"desupport {verdict.level} not sent, will retry: {exc}"
    state.write_state(path, {"day": today.isoformat(), "level": verdict.level})
    return outcome

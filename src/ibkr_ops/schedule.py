"""The daily restart's moments, and the guards they must pass before anything is installed.

The Gateway restarts itself (warm) every day at its auto-restart time: IBKR's mandatory daily
restart, a time of day without a weekday. IBC sets that time from config.ini's
AutoRestartTime at every JVM start, and a RESTART moves it to the next minute until the next
start. No host tool can stop it on a given day, so the pre-restart check's fixed rules (the
blackout windows, the NYSE session and its pre-open guard) are applied to that minute here,
on every weekday, together with the timer's own minute: a deployment whose daily restart
would break them is refused, instead of restarting anyway at a moment the check refuses.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ibkr_ops.host import prerestart
from ibkr_ops.host.config import HostConfig

#: Two ordinary weeks (no NYSE holiday), one on each side of daylight saving time.
_WEEKS = (dt.date(2027, 1, 10), dt.date(2027, 7, 11))  # Sundays


def timer_days() -> str:
    """The timer's days: Sunday for the weekly full login after IBKR's Sunday reset (the
    Gateway's own warm restart would meet a spent token), Monday to Friday warm. Saturday's
    restart is the Gateway's own, warm, with the market closed."""
    return "Sun,Mon..Fri"


def auto_restart_minute(hour: int, minute: int) -> tuple[int, int]:
    """The Gateway's own restart: the minute after the timer's, where a RESTART puts it."""
    total = (hour * 60 + minute + 1) % (24 * 60)
    return total // 60, total % 60


def refusal(hour: int, minute: int, zone: str, blackouts: tuple[str, ...],
            market_timezone: str = "America/New_York") -> str | None:
    """Why the daily restart at HH:MM (zone) would break a pre-restart rule, or None."""
    config = HostConfig(blackout_windows=blackouts, market_timezone=market_timezone)
    gateway = auto_restart_minute(hour, minute)
    for sunday in _WEEKS:
        for offset in range(7):
            day = sunday + dt.timedelta(days=offset)
            moments = [gateway] if offset == 6 else [(hour, minute), gateway]  # no Saturday timer
            for h, m in moments:
                local = dt.datetime.combine(day, dt.time(h, m), ZoneInfo(zone))
                decision = prerestart.decide(local, config)
                if not decision.allowed:
                    who = ("the Gateway restarts itself" if (h, m) == gateway
                           else "the timer restarts it")
                    why = decision.reason.split(" is ", 1)[-1]
                    return f"{who} at {h:02d}:{m:02d} ({zone}), which on {day:%A}s is {why}"
    return None

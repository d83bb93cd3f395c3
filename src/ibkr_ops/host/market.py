"""NYSE calendar and blackout windows, computed from rules with the standard library.

A restart must not land inside the regular session. exchange_calendars would answer this
too, at the price of pandas (~160 MiB) on the gateway host; the rules below cover NYSE's
regular holidays and early closes (NYSE Rule 7.2), and `extra_holidays` in the settings
covers the ad-hoc closures no rule predicts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibkr_ops.errors import UsageError

OPEN = dt.time(9, 30)
CLOSE = dt.time(16, 0)
EARLY_CLOSE = dt.time(13, 0)
JUNETEENTH_FIRST_YEAR = 2022

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"(?P<days>\S+)\s+(?P<start>[0-9]{1,2}:[0-9]{2})-(?P<end>[0-9]{1,2}:[0-9]{2})\Z")


def check_timezone(name: str) -> ZoneInfo:
    """The zone, or a UsageError saying tzdata is missing or the name is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a directory
        raise UsageError(
            f"market_timezone {name!r} is unknown (is the tzdata package installed?)"
        ) from None


def parse_day(text: str, key: str) -> dt.date:
    """A YYYY-MM-DD date, or a UsageError naming the settings key."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{key}: {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Window:
    """A weekly blackout window in market time; an end before the start runs past midnight."""

    text: str
    weekdays: frozenset[int]
    start: dt.time
    end: dt.time

    def ends(self, local: dt.datetime) -> dt.datetime:
        """The end of the occurrence that holds `local` (call only when it contains it)."""
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, self.end, local.tzinfo)

    def contains(self, local: dt.datetime) -> bool:
        """Whether a market-local time falls inside the window (start inclusive, end exclusive)."""
        now = local.time()
        if self.start < self.end:
            return local.weekday() in self.weekdays and self.start <= now < self.end
        if local.weekday() in self.weekdays and now >= self.start:
            return True
        return (local.weekday() - 1) % 7 in self.weekdays and now < self.end


def parse_window(text: str, key: str = "blackout_windows") -> Window:
    """Parse "DAYS HH:MM-HH:MM": DAYS is `*`, `Mon`, `Mon..Fri` or `Sat,Sun`."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise UsageError(
            f"{key}: {text!r} should look like 'Mon..Fri 20:00-21:00' or '* 00:15-01:45'"
        )
    try:
        start = dt.time.fromisoformat(match["start"].zfill(5))
        end = dt.time.fromisoformat(match["end"].zfill(5))
    except ValueError:
        raise UsageError(f"{key}: {text!r} has an invalid time") from None
    if start == end:
        raise UsageError(f"{key}: {text!r} is empty (start equals end)")
    return Window(text, _parse_days(match["days"], text, key), start, end)


def _parse_days(spec: str, text: str, key: str) -> frozenset[int]:
    if spec == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.lower().split(","):
        first, _, last = part.partition("..")
        try:
            a = _DAYS.index(first[:3])
            b = _DAYS.index(last[:3]) if last else a
        except ValueError:
            raise UsageError(f"{key}: {text!r} has an unknown day in {spec!r}") from None
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    x = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * x) // 451
    month, day = divmod(h + x - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th given weekday of a month; n = -1 is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    """Saturday holidays are observed on Friday, Sunday holidays on Monday."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


@cache
def holidays(year: int) -> frozenset[dt.date]:
    """NYSE full-day closures of a year from the standing rules."""
    mon, thu = 0, 3
    days = {
        _nth_weekday(year, 1, mon, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, mon, 3),  # Washington's Birthday
        easter(year) - dt.timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, mon, -1),  # Memorial Day
        _observed(dt.date(year, 7, 4)),
        _nth_weekday(year, 9, mon, 1),  # Labor Day
        _nth_weekday(year, 11, thu, 4),  # Thanksgiving
        _observed(dt.date(year, 12, 25)),
    }
    # New Year's Day on a Saturday is not moved back into the old year (Rule 7.2).
    if dt.date(year, 1, 1).weekday() != 5:
        days.add(_observed(dt.date(year, 1, 1)))
    if year >= JUNETEENTH_FIRST_YEAR:
        days.add(_observed(dt.date(year, 6, 19)))
    return frozenset(days)


def is_trading_day(day: dt.date, extra: frozenset[dt.date] = frozenset()) -> bool:
    """Monday to Friday, not an NYSE holiday, not an extra closure."""
    return day.weekday() < 5 and day not in holidays(day.year) and day not in extra


def close_time(day: dt.date) -> dt.time:
    """13:00 on the day after Thanksgiving and on weekday July 3 / December 24; else 16:00."""
    after_thanksgiving = _nth_weekday(day.year, 11, 3, 4) + dt.timedelta(days=1)
    eves = {dt.date(day.year, 7, 3), dt.date(day.year, 12, 24)}
    if day == after_thanksgiving or (day in eves and day.weekday() < 4):
        return EARLY_CLOSE
    return CLOSE

"""Historical bars and ticks of the simulated market, with the Gateway's own validation errors.

A request names an end time, a duration (``"1 D"``) and a bar size (``"5 mins"``); the bars are
cut from the instrument's sessions (regular hours with ``useRTH``) and priced by
``universe.price``. What a real Gateway refuses is refused with its code and wording: 321 for a
bad bar size or duration, 162 from the historical data farm for no data or too long a request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import universe
from .universe import UTC, Instrument

BAR_SIZES = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30, "1 min": 60,
    "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800,
    "4 hours": 14400, "8 hours": 28800, "1 day": 0, "1 week": -7, "1 month": -30,
}
LEGAL_BAR_SIZES = ("1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, "
                   "10 mins, 15 mins, 20 mins, 30 mins, 1 hour, 2 hours, 3 hours, 4 hours, "
                   "8 hours, 1 day, 1W, 1M")
WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST",
                "HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY")
MAX_BARS = 100_000
_DURATION = re.compile(r"^(\d+) ([SDWMY])$")
_SESSION_DAYS = {"D": 1, "W": 5, "M": 21, "Y": 252}


class HistoryError(Exception):
    """A refused request: the error code and text the Gateway sends."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclasses.dataclass(frozen=True)
class Bar:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def farm_error(text: str) -> HistoryError:
    return HistoryError(162, f"Historical Market Data Service error message:{text}")


def parse_end(text: str, now: float | None = None) -> float:
    """``endDateTime`` as the clients send it: empty (now), ``yyyymmdd hh:mm:ss [zone]``,
    ``yyyymmdd-hh:mm:ss`` (UTC) or ``yyyymmdd``; local time when no zone is named."""
    text = text.strip()
    if not text:
        return time.time() if now is None else now
    try:
        if re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d", text):
            return dt.datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC).timestamp()
        if re.fullmatch(r"\d{8}", text):
            return dt.datetime.strptime(text, "%Y%m%d").replace(hour=23, minute=59,
                                                                 second=59).timestamp()
        day, clock, *zone = text.split()
        moment = dt.datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
    except ValueError:
        raise HistoryError(321, "Error validating request.-'bP' : cause - Historical data query "
                           f"end date/time string [{text}] is invalid.  Format is "
                           "'YYYYMMDD{SPACE}hh:mm:ss[{SPACE}TMZ]'.") from None
    if zone:
        try:
            return moment.replace(tzinfo=ZoneInfo(zone[0])).timestamp()
        except (ZoneInfoNotFoundError, ValueError):
            raise HistoryError(321, "Error validating request.-'bP' : cause - Historical data "
                               f"query end date/time string [{text}] is invalid. Time zone "
                               f"[{zone[0]}] is unknown.") from None
    return moment.timestamp()


def bar_seconds(setting: str) -> int:
    try:
        return BAR_SIZES[" ".join(setting.split())]
    except KeyError:
        raise HistoryError(321, "Error validating request.-'bP' : cause - Historical data bar "
                           f"size setting is invalid. Legal ones are: {LEGAL_BAR_SIZES}") from None


def _window(inst: Instrument, end: float, duration: str, rth: bool) -> list[universe.Session]:
    match = _DURATION.match(duration.strip())
    if not match:
        raise HistoryError(321, "Error validating request.-'bP' : cause - Historical data query "
                           f"duration string [{duration}] is invalid. Format is "
                           "'<integer>{SPACE}<unit>', units are S, D, W, M, Y.")
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "S":
        days = max(1, amount // 86_400 + 2)
        found = universe.sessions_before(inst, end, days, rth)
        return [dataclasses.replace(s, start=max(s.start, end - amount)) for s in found
                if s.end > end - amount]
    return universe.sessions_before(inst, end, amount * _SESSION_DAYS[unit], rth)


def _show(inst: Instrument, what: str) -> str:
    what = what.upper()
    if what not in WHAT_TO_SHOW:
        raise HistoryError(321, "Error validating request.-'bP' : cause - Historical data "
                           f"query type [{what}] is invalid.")
    if inst.sec_type == "CASH" and what in ("TRADES", "ADJUSTED_LAST"):
        raise farm_error(f"No historical market data for {inst.symbol}.{inst.currency}/CASH@"
                         f"FXSUBPIP {what.title()} 1d")
    if what == "OPTION_IMPLIED_VOLATILITY" and inst.sec_type != "STK":
        raise farm_error(f"No historical market data for {inst.local_symbol}/{inst.sec_type}@"
                         f"{inst.exchange} Option_implied_volatility 1d")
    return what


def _value(inst: Instrument, what: str, when: float) -> tuple[float, float]:  # noqa: PLR0911
    """(low side, high side) of the shown series at ``when``."""
    bid, ask, last = universe.quote(inst, when)
    if what == "BID":
        return bid, bid
    if what == "ASK":
        return ask, ask
    if what == "BID_ASK":
        return bid, ask
    if what == "HISTORICAL_VOLATILITY":
        vol = round(0.22 + 0.05 * universe.noise(inst.con_id, int(when // 86_400)), 6)
        return vol, vol
    if what == "OPTION_IMPLIED_VOLATILITY":
        vol = round(0.25 + 0.05 * universe.noise(inst.con_id + 1, int(when // 86_400)), 6)
        return vol, vol
    if what == "MIDPOINT":
        mid = round((bid + ask) / 2, 6)
        return mid, mid
    return last, last


def _bar(inst: Instrument, what: str, start: float, end: float, label: str) -> Bar:
    points = [start + (end - start) * k / 8 for k in range(9)]
    values = [_value(inst, what, p) for p in points]
    lows = [v[0] for v in values]
    highs = [v[1] for v in values]
    first, last = values[0], values[-1]
    traded = what in ("TRADES", "ADJUSTED_LAST")
    volume = universe.size(inst, start, (end - start) / 60) if traded else -1.0
    count = max(1, int(volume // 100)) if traded else -1
    wap = round((max(highs) + min(lows) + last[0]) / 3, 6) if traded else -1.0
    if what == "BID_ASK":  # open/close are the bid and ask averages, as IB's BID_ASK bars
        return Bar(label, round(sum(lows) / len(lows), 6), max(highs), min(lows),
                   round(sum(highs) / len(highs), 6), volume, wap, count)
    return Bar(label, first[0], max(highs), min(lows), last[1], volume, wap, count)


def _label(inst: Instrument, when: float, daily: bool, format_date: int) -> str:
    local = dt.datetime.fromtimestamp(when, inst.zone)
    if daily:
        return local.strftime("%Y%m%d")
    if format_date == 2:
        return str(int(when))
    return local.strftime("%Y%m%d %H:%M:%S ") + inst.zone_id


def bars(inst: Instrument, end_text: str, duration: str, bar_size: str, what: str,
         rth: bool, format_date: int, now: float | None = None) -> tuple[list[Bar], str, str]:
    """The bars of one ``reqHistoricalData`` and its start and end labels."""
    seconds = bar_seconds(bar_size)
    what = _show(inst, what)
    current = time.time() if now is None else now
    end = min(parse_end(end_text, current), current)
    window = _window(inst, end, duration, rth)
    result: list[Bar] = []
    if seconds <= 0:  # daily, weekly, monthly bars: one per session, grouped
        groups: dict[str, list[universe.Session]] = {}
        for s in window:
            key = (s.day.strftime("%Y%m%d") if seconds == 0 else
                   f"{s.day.isocalendar()[0]}{s.day.isocalendar()[1]:02d}" if seconds == -7 else
                   s.day.strftime("%Y%m"))
            groups.setdefault(key, []).append(s)
        for group in groups.values():
            stop = min(group[-1].end, end)
            result.append(_bar(inst, what, group[0].start, stop,
                               group[0].day.strftime("%Y%m%d")))
    else:
        total = sum(max(0.0, min(s.end, end) - s.start) for s in window) / seconds
        if total > MAX_BARS:
            raise farm_error("Time length exceed max.")
        for s in window:
            t = s.start
            while t < min(s.end, end):
                stop = min(t + seconds, s.end)
                result.append(_bar(inst, what, t, stop, _label(inst, t, False, format_date)))
                t += seconds
    if not result:
        raise farm_error(f"HMDS query returned no data: {inst.local_symbol}@{inst.exchange} "
                         f"{what.title()}")
    start_label = _label(inst, window[0].start if window else end, False, 1)
    end_label = _label(inst, end, False, 1)
    return result, start_label, end_label


def head_timestamp(inst: Instrument, what: str, format_date: int) -> str:
    """The first data point: ``yyyymmdd-hh:mm:ss`` (UTC), or epoch seconds for formatDate 2."""
    _show(inst, what)
    if format_date == 2:
        moment = dt.datetime.strptime(inst.head, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        return str(int(moment.timestamp()))
    return inst.head


def ticks(inst: Instrument, start_text: str, end_text: str, count: int, what: str,
          rth: bool, now: float | None = None) -> list[tuple[int, float, float, float, float]]:
    """Historical ticks (time, bid, ask, last, size) from ``start`` on (or up to ``end``)."""
    what = _show(inst, what)
    current = time.time() if now is None else now
    count = max(1, min(count, 1000))
    if start_text.strip():
        first = int(parse_end(start_text, current))
        moments = range(first, first + count * 10, 10)
    else:
        last = int(min(parse_end(end_text, current), current))
        moments = range(last - (count - 1) * 10, last + 1, 10)
    found = []
    for moment in moments:
        if moment > current:
            break
        day = dt.datetime.fromtimestamp(moment, inst.zone).date()
        s = universe.session(inst, day, rth)
        if s is None or not s.start <= moment < s.end:
            continue
        bid, ask, last_price = universe.quote(inst, moment)
        found.append((moment, bid, ask, last_price, universe.size(inst, moment, 0.2)))
    return found

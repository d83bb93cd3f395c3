"""NYSE holidays and early closes from rules, checked against NYSE's published calendars."""

from __future__ import annotations

import datetime as dt

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.host import market

D = dt.date

PUBLISHED = {
    2025: {D(2025, 1, 1), D(2025, 1, 20), D(2025, 2, 17), D(2025, 4, 18), D(2025, 5, 26),
           D(2025, 6, 19), D(2025, 7, 4), D(2025, 9, 1), D(2025, 11, 27), D(2025, 12, 25)},
    2026: {D(2026, 1, 1), D(2026, 1, 19), D(2026, 2, 16), D(2026, 4, 3), D(2026, 5, 25),
           D(2026, 6, 19), D(2026, 7, 3), D(2026, 9, 7), D(2026, 11, 26), D(2026, 12, 25)},
    2027: {D(2027, 1, 1), D(2027, 1, 18), D(2027, 2, 15), D(2027, 3, 26), D(2027, 5, 31),
           D(2027, 6, 18), D(2027, 7, 5), D(2027, 9, 6), D(2027, 11, 25), D(2027, 12, 24)},
}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_holidays_match_the_published_calendar(year: int) -> None:
    assert market.holidays(year) == PUBLISHED[year]


def test_new_year_on_a_saturday_is_not_observed() -> None:
    assert not any(d.month == 1 and d.day < 3 for d in market.holidays(2028))
    assert D(2027, 12, 31) not in market.holidays(2027)


def test_juneteenth_only_from_2022() -> None:
    assert D(2021, 6, 18) not in market.holidays(2021)
    assert D(2022, 6, 20) in market.holidays(2022)


@pytest.mark.parametrize(("day", "close"), [
    (D(2026, 11, 27), "13:00"), (D(2026, 12, 24), "13:00"), (D(2028, 7, 3), "13:00"),
    (D(2025, 7, 3), "13:00"), (D(2026, 11, 25), "16:00"), (D(2026, 12, 23), "16:00"),
])
def test_early_closes(day: dt.date, close: str) -> None:
    assert f"{market.close_time(day):%H:%M}" == close


def test_easter_known_dates() -> None:
    assert [market.easter(y) for y in (2024, 2025, 2026, 2038)] == [
        D(2024, 3, 31), D(2025, 4, 20), D(2026, 4, 5), D(2038, 4, 25)]


@pytest.mark.parametrize(("spec", "moment", "inside"), [
    ("Sun 17:00-19:00", "2026-11-29 18:00", True),
    ("Sun 17:00-19:00", "2026-11-29 19:00", False),
    ("Mon..Fri 22:00-02:00", "2026-11-24 01:00", True),   # Tue 01:00, from Mon 22:00
    ("Mon..Fri 22:00-02:00", "2026-11-28 01:00", True),   # Sat 01:00, from Fri 22:00
    ("Mon..Fri 22:00-02:00", "2026-11-23 01:00", False),  # Mon 01:00: Sun not listed
    ("Sat,Sun 00:00-23:59", "2026-11-29 12:00", True),
    ("* 00:15-01:45", "2026-11-25 00:15", True),
    ("Fri..Mon 10:00-11:00", "2026-11-29 10:30", True),   # wraps over the weekend
])
def test_blackout_windows(spec: str, moment: str, inside: bool) -> None:
    assert market.parse_window(spec).contains(dt.datetime.fromisoformat(moment)) is inside


@pytest.mark.parametrize("spec", ["Sun", "Sun 17:00", "Sun 25:00-26:00", "Xyz 10:00-11:00",
                                  "Sun 10:00-10:00"])
def test_bad_windows_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError, match="blackout_windows"):
        market.parse_window(spec)


@pytest.mark.parametrize(("spec", "moment", "end"), [
    ("* 23:45-00:45", "2026-11-25 23:50", "2026-11-26 00:45"),  # before midnight
    ("* 23:45-00:45", "2026-11-26 00:10", "2026-11-26 00:45"),  # after it
    ("Fri 23:00-03:00", "2026-11-28 02:00", "2026-11-28 03:00"),
    ("Sun 10:00-11:00", "2026-11-29 10:30", "2026-11-29 11:00"),
])
def test_a_window_knows_when_the_occurrence_holding_a_moment_ends(spec: str, moment: str,
                                                                   end: str) -> None:
    local = dt.datetime.fromisoformat(moment)
    window = market.parse_window(spec)
    assert window.contains(local)
    assert window.ends(local) == dt.datetime.fromisoformat(end)


def test_a_bad_window_names_its_own_setting() -> None:
    with pytest.raises(UsageError, match=r"^maintenance_windows: 'Fri 23:00'"):
        market.parse_window("Fri 23:00", "maintenance_windows")

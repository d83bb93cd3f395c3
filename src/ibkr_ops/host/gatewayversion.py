"""IBKR's minimum supported Gateway version, as far as this project knows it, and a verdict
on an installed build.

IBKR desupports old Gateway builds on fixed dates and announces each cutoff only inside the
Gateway itself, weeks ahead ("The version of the application you are running, 1019.2, needs
to be upgraded, as it will be desupported on 20250320. The minimum supported version at that
time will be 1030.1."), and keeps no archive of old installers. A host that is not looked at
finds out on the day its Gateway stops logging in. So the cutoffs seen so far are kept here
with the day they were last checked, and the health check warns ahead of the next one.
Standard library only (host tools).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from ibkr_ops.errors import UsageError


@dataclass(frozen=True, order=True)
class Version:
    """A Gateway build as IBKR numbers it: 10.30.1 is `1030.1` in IBKR's notices and `1030`
    (major and minor only) in `TWS_MAJOR_VRSN` and the install directory."""

    major: int
    minor: int
    patch: int | None = None

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}" + ("" if self.patch is None else f".{self.patch}")

    def below(self, other: Version) -> bool:
        """Older than `other`; a side without a patch number (`1030`) compares on major and
        minor only, since `TWS_MAJOR_VRSN` does not say which 10.30.x is installed."""
        if self.patch is None or other.patch is None:
            return (self.major, self.minor) < (other.major, other.minor)
        return self < other


_DOTTED = re.compile(r"(\d{1,2})\.(\d+)(?:\.(\d+))?[a-z]?")
_IBKR = re.compile(r"(\d{2})(\d{2})(?:\.(\d+))?[a-z]?")


def parse(text: str) -> Version:
    """`10.30`, `10.30.1t`, `1030` or `1030.1` (IBKR's own form) as a Version."""
    value = text.strip().lower()
    match = _DOTTED.fullmatch(value) or _IBKR.fullmatch(value)
    if match is None:
        raise UsageError(f"{text!r} is not a Gateway version: use e.g. 10.30, 10.30.1 or 1030")
    major, minor, patch = match.groups()
    return Version(int(major), int(minor), None if patch is None else int(patch))


@dataclass(frozen=True)
class Cutoff:
    """From `day` on, builds below `minimum` are desupported; `source` says who saw it."""

    day: dt.date
    minimum: Version
    source: str


# Each from IBKR's own notice as users quoted it (IBKR publishes no list). A later cutoff
# reported second-hand (10.50.1 from 2026-12-15) is left out until a notice is seen: IBKR's
# own notice (API message 2172, or the dialog) names the date and wins over this list.
CUTOFFS: Final = (
    Cutoff(dt.date(2023, 7, 18), Version(10, 19, 2),
           "notice on 10.19.1, quoted in PlusGenie/ib-gateway-docker#5"),
    Cutoff(dt.date(2025, 3, 20), Version(10, 30, 1),
           "notice on 10.19.2, quoted in QuantConnect/Lean.Brokerages.InteractiveBrokers#143"),
)
# When the list above was last compared with what IBKR's notices say.
CHECKED: Final = dt.date(2026, 12, 3)
WARN_DAYS: Final = 30
# What every desupport report tells the operator to do.
UPGRADE_HINT: Final = (
    "Install a newer build: download IBKR's offline Gateway installer and run `invoke upgrade "
    "--host HOST --gateway-installer NEW.sh` (beside the running build, rolled back by itself "
    "if it does not log in).")


def minimum_on(day: dt.date) -> Version:
    """The minimum in force on `day` as far as the known cutoffs go."""
    passed = [c.minimum for c in CUTOFFS if c.day <= day]
    return passed[-1] if passed else Version(0, 0)


def next_cutoff(day: dt.date) -> Cutoff | None:
    """The first known cutoff after `day`, if one has been announced."""
    return next((c for c in CUTOFFS if c.day > day), None)


@dataclass(frozen=True)
class Verdict:
    """What to tell the operator: `level` is "error" when the build is already below the
    minimum, "warning" when a known cutoff catches it within the warning period."""

    level: str
    text: str


def assess(installed: Version, today: dt.date, minimum: Version | None = None,
           warn_days: int = WARN_DAYS) -> Verdict | None:
    """The verdict on `installed` today, or None when nothing is due. `minimum` replaces what
    this project knows (an operator who has seen a newer notice than this project, or a test
    fleet pinned to an old simulated build): then only that floor counts."""
    floor = minimum if minimum is not None else minimum_on(today)
    if installed.below(floor):
        return Verdict("error", (
            f"IB Gateway {installed} is below IBKR's minimum supported version {floor} "
            f"(as known on {CHECKED.isoformat()}): IBKR refuses logins of desupported builds. "
            + UPGRADE_HINT))
    coming = next_cutoff(today)
    if minimum is None and coming is not None and installed.below(coming.minimum):
        days = (coming.day - today).days
        if days <= warn_days:
            return Verdict("warning", (
                f"IB Gateway {installed} will be desupported by IBKR on "
                f"{coming.day.isoformat()} (in {days} days); the minimum from then on is "
                f"{coming.minimum}. " + UPGRADE_HINT))
    return None


@dataclass(frozen=True)
class Notice:
    """What one of IBKR's version notices says; None where it does not say it."""

    running: Version | None
    desupported_on: dt.date | None
    minimum: Version | None
    final: bool  # "is no longer supported": the build is refused already


# IBKR's wording, from the notices quoted above and the Gateway's API message 2172.
_RUNNING = re.compile(r"version of the application you are running,\s*(\d{4}(?:\.\d+)?)", re.I)
_ON = re.compile(r"desupported\s+on\s+(\d{8})", re.I)
_MINIMUM = re.compile(r"minimum supported\s+version[^0-9]{0,40}?(\d{4}(?:\.\d+)?)", re.I)
_FINAL = re.compile(r"(?:is\s+)?no\s+longer\s+supported", re.I)
_WARNING = re.compile(r"needs\s+to\s+be\s+upgraded|will\s+be\s+desupported|minimum\s+supported"
                      r"\s+version", re.I)


def read_notice(text: str) -> Notice | None:
    """The facts in a text that carries IBKR's desupport wording, or None for any other."""
    final = _FINAL.search(text) is not None
    if not final and _WARNING.search(text) is None:
        return None
    running, on, floor = _RUNNING.search(text), _ON.search(text), _MINIMUM.search(text)
    day = None
    if on is not None:
        try:
            day = dt.datetime.strptime(on.group(1), "%Y%m%d").date()
        except ValueError:
            day = None
    return Notice(parse(running.group(1)) if running else None, day,
                  parse(floor.group(1)) if floor else None, final)

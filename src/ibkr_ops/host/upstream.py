"""IBKR's side, as the Gateway tells its API clients: its link to IBKR and its data farms.

A Gateway can be logged in, answer the API, and still deliver no data: its market-data or
historical-data farm is broken (2103, 2105, 2157), or its connection to IBKR is lost (1100)
during IBKR's nightly reset or a network outage. Users of every packaging report this as
"connected but no data". A restart does not help (the Gateway reconnects by itself, and a
new login in IBKR's reset makes it worse), so this is for telling, not healing. How long
the connection has been lost is kept in `<state_dir>/upstream.json`: a short loss is normal,
a long one is an outage.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ibkr_ops.errors import OpsError
from ibkr_ops.host.config import HostConfig

OK, WARN, FAIL = "ok", "warn", "fail"
STATE_FILE = "upstream.json"

# Farm kinds by status code (IBKR's message codes); "inactive" farms (2107, 2108, 2159)
# reconnect on demand, so they count as working.
FARM_OK = {2104: "market data", 2106: "historical data", 2158: "security definition",
           2107: "historical data", 2108: "market data", 2159: "security definition"}
FARM_BROKEN = {2103: "market data", 2105: "historical data", 2157: "security definition"}
LOST = 1100
RESTORED = (1101, 1102)  # data lost / data maintained
# IBKR's notice that this build will be desupported (its words, with the date), at connect.
VERSION_NOTICE = 2172
CODES = frozenset((*FARM_OK, *FARM_BROKEN, LOST, *RESTORED, VERSION_NOTICE))


@dataclass(frozen=True)
class Farm:
    """One data farm as last reported: its kind, its name (usfarm, ushmds, ...), working or not."""

    kind: str
    name: str
    ok: bool
    code: int


@dataclass(frozen=True)
class Link:
    """What one API connection learned about the Gateway's side: connected to IBKR or not (the
    last of 1100/1101/1102 wins; none means connected), and each farm's latest status."""

    connected: bool
    farms: tuple[Farm, ...] = ()
    lost_message: str = ""

    @property
    def broken(self) -> tuple[Farm, ...]:
        return tuple(f for f in self.farms if not f.ok)


def read(messages: Iterable[tuple[int, str]]) -> Link:
    """The status messages of one connection, in the order they came, as one Link."""
    connected, lost_message = True, ""
    farms: dict[str, Farm] = {}
    for code, text in messages:
        if code == LOST:
            connected, lost_message = False, f"{code} {text}"
        elif code in RESTORED:
            connected = True
        elif code in FARM_OK or code in FARM_BROKEN:
            kind = FARM_OK.get(code) or FARM_BROKEN[code]
            name = text.rpartition(":")[2].strip() or kind
            farms[name] = Farm(kind, name, code in FARM_OK, code)
    return Link(connected, tuple(farms.values()), lost_message)


def judge(link: Link, lost_for_s: float, fail_after_s: float) -> tuple[str, str]:
    """(status, detail): fail when IBKR has been out of reach for `fail_after_s`, warn for a
    shorter loss or a broken farm, ok otherwise."""
    parts = []
    status = OK
    if not link.connected:
        status = FAIL if lost_for_s >= fail_after_s else WARN
        parts.append(f"IBKR connection lost for {lost_for_s:.0f} s ({link.lost_message}); "
                     f"an outage from {fail_after_s:.0f} s")
    for farm in link.broken:
        status = FAIL if status == FAIL else WARN
        parts.append(f"{farm.kind} farm {farm.name} broken ({farm.code})")
    if status != OK:
        return status, "; ".join(parts)
    if not link.farms:
        return OK, "connected to IBKR (no farm status reported)"
    return OK, "connected to IBKR; farms OK: " + ", ".join(f.name for f in link.farms)


def lost_for(config: HostConfig, link: Link, now: float) -> float:
    """Seconds the connection has been lost as far as the checks saw (0 when connected).

    The start of a loss is remembered; a caller that may not write the state (a bot's
    ExecStartPre as its own user) still reads it, or counts from now.
    """
    path = os.path.join(config.state_dir, STATE_FILE)
    if link.connected:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return 0.0
    # Imported here: a connected Gateway, the usual case, keeps the check's start-up lean.
    from pathlib import Path  # noqa: PLC0415

    from ibkr_ops.host import state  # noqa: PLC0415

    since = (state.read_state(Path(path)) or {}).get("lost_since")
    if not isinstance(since, int | float) or since > now:
        since = now
        with contextlib.suppress(OpsError):
            state.write_state(Path(path), {"lost_since": since, "message": link.lost_message})
    return now - since

"""IBKR's side of the simulated Gateway: its data farms and its connection to IBKR.

A real Gateway tells each API client, right after nextValidId, how its farms stand (2104,
2106, 2158 when OK; 2103, 2105, 2157 when broken) or that its link to IBKR is lost (1100),
and tells connected clients again when that changes (1102 when the link is back). The
faults `farm-broken` and `connectivity-lost` break that side on demand; `CLEAR` repairs it.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .gateway import Gateway

FAULTS = ("farm-broken", "connectivity-lost")
# (OK code, broken code, text with {} for "OK"/"broken"): the farms a paper login uses.
FARMS = (
    (2104, 2103, "Market data farm connection is {}:usfarm"),
    (2106, 2105, "HMDS data farm connection is {}:ushmds"),
    (2158, 2157, "Sec-def data farm connection is {}:secdefnj"),
)
# The farms a broken-farm fault breaks: market and historical data ("connected, no data").
BROKEN_BY_FAULT = (2103, 2105)
_FAULT_FARMS = {code for ok, bad, _ in FARMS if bad in BROKEN_BY_FAULT for code in (ok, bad)}
VERSION_NOTICE = 2172  # IBKR's notice of a coming desupport, in its own words
LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
RESTORED = (1102, "Connectivity between IB and Trader Workstation has been restored - data "
                  "maintained.")


def farm_messages(faults: Container[str]) -> list[tuple[int, str]]:
    """Each farm's status as the faults leave it."""
    broken = "farm-broken" in faults
    out = []
    for ok, bad, text in FARMS:
        if broken and bad in BROKEN_BY_FAULT:
            out.append((bad, text.format("broken")))
        else:
            out.append((ok, text.format("OK")))
    return out


def at_connect(faults: Container[str], connected: bool) -> list[tuple[int, str]]:
    """What a new API client hears after nextValidId."""
    return farm_messages(faults) if connected else [LOST]


def switch(gateway: Gateway, name: str, on: bool) -> None:
    """A fault of this module switched on or off: tell the connected clients, as the Gateway
    does when its link or a farm changes."""
    if name == "connectivity-lost":
        gateway.connected_to_ib = gateway.logged_in and not on
        messages = [LOST] if on else [RESTORED, *farm_messages(gateway.faults)]
    else:
        messages = [m for m in farm_messages(gateway.faults) if m[0] in _FAULT_FARMS]
    if not gateway.logged_in:
        return
    for code, text in messages:
        gateway.api_server.broadcast(code, text)

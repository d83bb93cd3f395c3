"""Parsing `systemctl show --timestamp=unix` output (format of systemd 252)."""

from __future__ import annotations

import pytest

from ibkr_ops.errors import OpsError
from ibkr_ops.host import systemd

OUTPUT = """Id=ibkr-gateway.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=4242
ControlGroup=/system.slice/ibkr-gateway.service
ActiveEnterTimestamp=@1764109800

Id=xvfb.service
LoadState=not-found
ActiveState=inactive
SubState=dead
MainPID=0
ControlGroup=
ActiveEnterTimestamp=
"""


def test_two_units_in_order() -> None:
    gateway, xvfb = systemd.parse_units(OUTPUT, ("ibkr-gateway.service", "xvfb.service"))
    assert gateway.active and gateway.main_pid == 4242
    assert gateway.active_since == 1764109800.0
    assert gateway.control_group == "/system.slice/ibkr-gateway.service"
    assert gateway.describe() == "ibkr-gateway.service active (running)"
    assert not xvfb.active and xvfb.active_since is None
    assert xvfb.describe() == "xvfb.service is not-found"


def test_missing_block_is_an_error() -> None:
    with pytest.raises(OpsError, match="answered for 2 of 3 units"):
        systemd.parse_units(OUTPUT, ("a.service", "b.service", "c.service"))


def test_off_systemd_show_unit_is_none() -> None:
    if systemd.is_systemd_host():
        pytest.skip("this machine runs systemd as PID 1")
    assert systemd.show_unit("ibkr-gateway.service") is None

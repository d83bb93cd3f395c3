"""IBKR's side as the Gateway reports it: farm and link messages judged, a loss timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ibkr_ops.host import upstream
from ibkr_ops.host.config import HostConfig

AT_CONNECT = [(2104, "Market data farm connection is OK:usfarm"),
              (2106, "HMDS data farm connection is OK:ushmds"),
              (2158, "Sec-def data farm connection is OK:secdefnj")]
LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")


def test_a_healthy_connect_is_connected_with_every_farm_ok() -> None:
    link = upstream.read(AT_CONNECT)
    assert link.connected and not link.broken
    assert [(f.kind, f.name) for f in link.farms] == [
        ("market data", "usfarm"), ("historical data", "ushmds"),
        ("security definition", "secdefnj")]
    assert upstream.judge(link, 0, 180) == (
        "ok", "connected to IBKR; farms OK: usfarm, ushmds, secdefnj")


def test_the_latest_message_per_farm_wins_and_inactive_is_fine() -> None:
    link = upstream.read([*AT_CONNECT, (2103, "Market data farm connection is broken:usfarm"),
                          (2107, "HMDS data farm connection is inactive but should be "
                                 "available upon demand.:ushmds")])
    assert [(f.name, f.ok) for f in link.farms] == [
        ("usfarm", False), ("ushmds", True), ("secdefnj", True)]
    assert upstream.judge(link, 0, 180) == ("warn", "market data farm usfarm broken (2103)")
    healed = upstream.read([(2103, "Market data farm connection is broken:usfarm"),
                            (2104, "Market data farm connection is OK:usfarm")])
    assert upstream.judge(healed, 0, 180)[0] == "ok"


@pytest.mark.parametrize(("lost_for", "status"), [(0, "warn"), (179, "warn"), (180, "fail")])
def test_a_lost_link_warns_then_fails_past_the_bound(lost_for: float, status: str) -> None:
    got, detail = upstream.judge(upstream.read([LOST]), lost_for, 180)
    assert got == status
    assert detail.startswith(f"IBKR connection lost for {lost_for} s (1100 Connectivity")


def test_restored_link_is_connected_again() -> None:
    link = upstream.read([LOST, (1102, "Connectivity between IB and Trader Workstation has "
                                       "been restored - data maintained.")])
    assert link.connected


def test_no_farm_status_is_still_ok() -> None:
    assert upstream.judge(upstream.read([]), 0, 180) == (
        "ok", "connected to IBKR (no farm status reported)")


def test_the_start_of_a_loss_is_remembered_until_the_link_is_back(tmp_path: Path) -> None:
    config = HostConfig(state_dir=str(tmp_path))
    lost, back = upstream.read([LOST]), upstream.read(AT_CONNECT)
    assert upstream.lost_for(config, lost, 1000.0) == 0
    assert upstream.lost_for(config, lost, 1200.0) == 200
    stored = json.loads((tmp_path / upstream.STATE_FILE).read_text())
    assert stored == {"lost_since": 1000.0, "message": f"1100 {LOST[1]}"}
    assert upstream.lost_for(config, back, 1300.0) == 0
    assert not (tmp_path / upstream.STATE_FILE).exists()
    assert upstream.lost_for(config, lost, 1400.0) == 0  # a new loss counts from its start


def test_a_caller_that_cannot_write_still_judges(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    config = HostConfig(state_dir=str(blocked))
    assert upstream.lost_for(config, upstream.read([LOST]), 1000.0) == 0
    assert upstream.lost_for(config, upstream.read(AT_CONNECT), 1000.0) == 0

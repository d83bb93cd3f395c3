"""Pre-restart check: session edges, weekends, holidays, both DST sides, blackouts, --force."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_peer import healthy, peer
from host_run import run_tool

from ibkr_ops.errors import UsageError
from ibkr_ops.host import prerestart
from ibkr_ops.host.config import HostConfig

CONFIG = HostConfig()


def allowed(moment: str, config: HostConfig = CONFIG) -> bool:
    return prerestart.decide(prerestart.parse_now(moment, config), config).allowed


@pytest.mark.parametrize(("moment", "verdict"), [
    ("2026-11-25T12:00", False),      # Wednesday, mid-session
    ("2026-11-25T09:19:59", True),    # before the 10 min guard
    ("2026-11-25T09:20", False),      # inside the guard
    ("2026-11-25T09:30", False),      # the open
    ("2026-11-25T15:59:59", False),
    ("2026-11-25T16:00", True),       # the close
    ("2026-11-25T16:30", True),       # the timer's time
    ("2026-11-28T12:00", True),       # Saturday
    ("2026-11-29T12:00", True),       # Sunday
    ("2026-11-26T12:00", True),       # Thanksgiving
    ("2026-07-03T12:00", True),       # Independence Day observed
    ("2026-11-27T12:59", False),      # early close day, before 13:00
    ("2026-11-27T13:00", True),       # early close
    ("2026-12-24T13:30", True),
])
def test_session_edges_weekends_holidays(moment: str, verdict: bool) -> None:
    assert allowed(moment) is verdict


@pytest.mark.parametrize(("utc", "verdict"), [
    ("2026-03-06T20:05:00+00:00", False),  # Fri, EST: 15:05 New York
    ("2026-03-09T20:05:00+00:00", True),   # Mon, EDT: 16:05 New York
    ("2026-10-30T20:30:00+00:00", True),   # Fri, EDT: 16:30 New York
    ("2026-11-02T20:30:00+00:00", False),  # Mon, EST: 15:30 New York
])
def test_same_utc_time_either_side_of_dst(utc: str, verdict: bool) -> None:
    assert allowed(utc) is verdict


def test_blackouts_and_extra_holidays() -> None:
    config = HostConfig(blackout_windows=("Sun 17:00-19:00",), extra_holidays=("2025-01-09",))
    assert not allowed("2026-11-29T18:00", config)
    assert allowed("2025-01-09T12:00", config)
    assert not allowed("2025-01-09T12:00")


def test_reason_says_when_a_restart_may_go_ahead() -> None:
    decision = prerestart.decide(prerestart.parse_now("2026-11-27T10:00", CONFIG), CONFIG)
    assert "inside the regular session (09:30-13:00)" in decision.reason
    assert "from 13:00" in decision.reason


def test_bad_now_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not an ISO-8601 time"):
        prerestart.parse_now("tomorrow", CONFIG)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """ops.json pointing at a listening API peer, with state in tmp_path."""
    with peer(healthy) as (port, _):
        path = tmp_path / "ops.json"
        path.write_text(json.dumps({"api_port": port, "state_dir": str(tmp_path / "state")}))
        yield path, tmp_path / "state" / prerestart.RECORD_FILE, port


def test_cli_refuses_in_session_with_the_reason(settings: tuple[Path, Path, int]) -> None:
    path, record, _ = settings
    result = run_tool("ibkr-pre-restart-check", "--config", str(path), "--now", "2026-11-25T11:00")
    assert result.returncode == 1
    assert "restart refused" in result.stderr
    assert "regular session" in result.stderr
    assert not record.exists()


def test_cli_allows_after_close_and_records_the_gateway(settings: tuple[Path, Path, int]) -> None:
    path, record, _ = settings
    result = run_tool("ibkr-pre-restart-check", "--config", str(path), "--json",
                      "--now", "2026-11-25T16:30")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["allowed"], data["forced"]) == (True, False)
    assert data["now"] == "2026-11-25T16:30:00-05:00"
    # The API port's owner is this test process.
    assert data["gateway"]["pid"] == os.getpid()
    assert data["gateway"]["rss_mb"] > 0
    assert json.loads(record.read_text())["gateway"] == data["gateway"]


def test_cli_force_overrides_and_logs_why(settings: tuple[Path, Path, int],
                                          tmp_path: Path) -> None:
    path, record, _ = settings
    journal_path = str(tmp_path / "journal.socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
        journal.bind(journal_path)
        journal.settimeout(5)
        result = run_tool("ibkr-pre-restart-check", "--config", str(path), "--force",
                          "--reason", "gateway wedged", "--now", "2026-11-25T11:00",
                          env={"IBKR_OPS_JOURNAL_SOCKET": journal_path})
        entry = journal.recv(65536).decode()
    assert result.returncode == 0
    assert "restart FORCED (gateway wedged); it would have been refused" in result.stdout
    assert "MESSAGE=restart FORCED (gateway wedged)" in entry
    assert "PRIORITY=4" in entry
    assert record.exists()


@pytest.mark.parametrize("args", [["--now", "noon"], ["--nowish"]])
def test_cli_bad_usage_exits_2(args: list[str]) -> None:
    result = run_tool("ibkr-pre-restart-check", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_record_is_ignored_when_stale(tmp_path: Path) -> None:
    config = HostConfig(state_dir=str(tmp_path))
    now = dt.datetime(2026, 11, 25, 21, 30, tzinfo=dt.UTC)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        config = HostConfig(state_dir=str(tmp_path), api_port=sock.getsockname()[1])
        assert prerestart.record_gateway(config, now) is not None
    assert prerestart.read_record(config, now + dt.timedelta(minutes=5)) is not None
    assert prerestart.read_record(config, now + dt.timedelta(hours=2)) is None


@pytest.mark.parametrize(("moment", "verdict"), [
    ("2026-11-25T23:44", True),       # Wednesday evening, before the nightly reset
    ("2026-11-25T23:45", False),      # the nightly reset
    ("2026-11-26T00:30", False),
    ("2026-11-26T00:45", True),       # its end
    ("2026-11-27T23:10", False),      # Friday night: the weekend maintenance
    ("2026-11-28T02:59", False),
    ("2026-11-28T03:00", True),
    ("2026-07-01T23:50", False),      # summer time: still New York's 23:50
])
def test_ibkrs_maintenance_windows_refuse(moment: str, verdict: bool) -> None:
    assert allowed(moment) is verdict


def test_the_refusal_names_the_window_and_its_end() -> None:
    decision = prerestart.decide(prerestart.parse_now("2026-11-25T23:50", CONFIG), CONFIG)
    assert "inside IBKR's maintenance window '* 23:45-00:45'" in decision.reason
    assert "restart from 00:45" in decision.reason
    found = prerestart.maintenance(prerestart.parse_now("2026-11-27T23:10", CONFIG), CONFIG)
    assert found is not None
    assert found[0] == "Fri 23:00-03:00"
    assert found[1].isoformat() == "2026-11-28T03:00:00-05:00"


def test_no_windows_and_the_session_winning() -> None:
    off = HostConfig(maintenance_windows=())
    assert allowed("2026-11-25T23:50", off)
    # A window inside the regular session does not make it a maintenance hold: the session
    # refuses restarts anyway, and a Gateway there must be healed.
    day = HostConfig(maintenance_windows=("Mon..Fri 10:00-11:00",))
    assert prerestart.maintenance(prerestart.parse_now("2026-11-25T10:30", day), day) is None
    thanksgiving = prerestart.parse_now("2026-11-26T10:30", day)  # no session that day
    assert prerestart.maintenance(thanksgiving, day) is not None


def test_the_command_refuses_in_the_window_and_force_overrides(
        settings: tuple[Path, Path, int]) -> None:
    path, _, _ = settings
    refused = run_tool("ibkr-pre-restart-check", "--config", str(path), "--now",
                       "2026-11-26T00:10")
    assert refused.returncode == 1
    assert "maintenance window" in refused.stderr
    forced = run_tool("ibkr-pre-restart-check", "--config", str(path), "--now",
                      "2026-11-26T00:10", "--force", "--reason", "test")
    assert forced.returncode == 0

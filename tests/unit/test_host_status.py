"""`ibkr-health-check --history` reads back what the watchdog, login watch and restarts wrote."""

from __future__ import annotations

import json
from pathlib import Path

from host_run import run_tool

from ibkr_ops.host import history, loginwatch, watchdog
from ibkr_ops.host.config import HostConfig


def test_history_shows_restarts_by_cause_login_and_hold(tmp_path: Path) -> None:
    config = HostConfig(state_dir=str(tmp_path))
    history.record(config, history.Restart(1_800_000_000.0, "hang", "warm", True, 14.2,
                                           812.0, 301.0))
    history.record(config, history.Restart(1_800_000_100.0, "memory", "cold", False, 600.0))
    loginwatch.LoginState(state="logged-in", since=1_800_000_050.0,
                          last_success=1_800_000_050.0).save(config)
    watchdog.WatchState(api_failures=2, hold="3 automatic restarts in the last hour").save(config)
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"state_dir": str(tmp_path)}))
    result = run_tool("ibkr-health-check", "--history", "--config", str(settings))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "restarts recorded: 2 (hang 1, crash-loop 0, memory 1, scheduled 0, manual 0)" in out
    assert "warm restart (hung API) done in 14 s, memory 812 -> 301 MB" in out
    assert "cold restart (memory above the ceiling) FAILED in 600 s" in out
    assert "login: logged-in since 2027-01-15 08:00:50 UTC" in out
    assert "2 failed API check(s) in a row" in out
    assert "automatic restarts OFF: 3 automatic restarts in the last hour" in out
    assert f"metrics: {tmp_path}/metrics/ibkr_gateway.prom" in out


def test_history_of_a_new_host_says_none(tmp_path: Path) -> None:
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"state_dir": str(tmp_path / "absent")}))
    result = run_tool("ibkr-health-check", "--history", "--config", str(settings))
    assert result.returncode == 0, result.stderr
    assert "last alerted status: none" in result.stdout
    assert "last successful login: never" in result.stdout
    assert "restarts recorded: 0" in result.stdout

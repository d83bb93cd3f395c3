"""Health alerts go out on state changes only, and survive a Discord outage."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

from discord_sim import WEBHOOK_ID, discord_sim
from host_peer import healthy, peer
from host_run import run_tool

from ibkr_ops.host import alerts, health, restart
from ibkr_ops.host.config import HostConfig

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def report(*statuses: str) -> health.Report:
    checks = tuple(health.Check(name, status, f"{name} detail", 1.0)
                   for name, status in zip(health.LAYERS, statuses, strict=False))
    return health.Report(checks, 5.0)


def test_first_healthy_run_is_silent_first_failure_alerts() -> None:
    assert alerts.transition("ok", report("ok", "ok"), None, NOW) is None
    level, text = alerts.transition("ok", report("ok", "fail"), None, NOW) or ("", "")
    assert level == "error"
    assert text.startswith("Gateway UNHEALTHY")
    assert "display: fail - display detail" in text


def test_recovery_says_how_long_it_lasted() -> None:
    since = (NOW - dt.timedelta(minutes=7)).isoformat()
    assert alerts.transition("fail", report("ok"), since, NOW) == (
        "info", "Gateway healthy again after 7 min (was fail)")
    level, text = alerts.transition("fail", report("warn"), since, NOW) or ("", "")
    assert level == "warning"
    assert text.startswith("Gateway recovered after 7 min, with a warning")


def test_no_change_no_alert() -> None:
    assert alerts.transition("fail", report("fail", "ok"), None, NOW) is None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_check_notifies_once_per_change(tmp_path: Path) -> None:
    with discord_sim(tmp_path) as sim, peer(healthy) as (port, _):
        creds = tmp_path / "credentials.env"
        creds.write_text(f"DISCORD_WEBHOOK_URL={sim.url}\n")
        os.chmod(creds, 0o600)
        settings = tmp_path / "ops.json"

        def check(api_port: int) -> int:
            settings.write_text(json.dumps({
                "api_port": api_port, "credentials_file": str(creds), "notify_timeout_s": 5,
                "state_dir": str(tmp_path / "state"), "hostname": "gw1"}))
            return run_tool("ibkr-health-check", "--notify", "--config", str(settings),
                            env={"DISCORD_WEBHOOK_URL": ""}).returncode

        down = closed_port()
        assert [check(port), check(down), check(down), check(port), check(port)] == [0, 1, 1, 0, 0]
        titles = [m["embeds"][0]["title"] for m in sim.messages()]
        assert titles == ["ERROR · gw1 · paper", "INFO · gw1 · paper"]
        assert "port: fail" in sim.messages()[0]["embeds"][0]["description"]


def test_undelivered_alert_is_retried_on_the_next_run(tmp_path: Path) -> None:
    creds = tmp_path / "credentials.env"
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"api_port": closed_port(), "credentials_file": str(creds),
                                    "state_dir": str(tmp_path / "state")}))
    with discord_sim(tmp_path) as sim:
        for url in (sim.url.replace(WEBHOOK_ID, "1"), sim.url):  # a deleted webhook, then fixed
            creds.write_text(f"DISCORD_WEBHOOK_URL={url}\n")
            os.chmod(creds, 0o600)
            run = run_tool("ibkr-health-check", "--notify", "--config", str(settings),
                           env={"DISCORD_WEBHOOK_URL": ""})
            assert run.returncode == 1
        assert sim.statuses() == [404, 200]
        assert len(sim.messages()) == 1
    assert json.loads((tmp_path / "state" / "health.json").read_text())["status"] == "fail"


def test_bad_news_is_held_while_a_restart_runs(tmp_path: Path) -> None:
    config = HostConfig(state_dir=str(tmp_path))
    sent: list[str] = []

    def deliver(_: HostConfig, level: str, text: str) -> None:
        sent.append(level)

    with restart.in_progress(config):
        assert restart.restarting(config)
        held = alerts.on_report(config, report("fail"), deliver=deliver)
    assert held == "alert held: a Gateway restart is in progress"
    assert not restart.restarting(config)
    assert alerts.on_report(config, report("fail"), deliver=deliver) == "notified error"
    assert sent == ["error"]


def test_an_expired_marker_does_not_hold_alerts(tmp_path: Path) -> None:
    config = HostConfig(state_dir=str(tmp_path))
    (tmp_path / restart.MARKER_FILE).write_text(json.dumps({"pid": 1, "until": 1.0}))
    assert not restart.restarting(config)

"""Health layers against a scripted API peer; off systemd the systemd layers say skip."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path

from host_peer import Conn, healthy, logged_in, peer

from ibkr_ops.host import health, proc, upstream
from ibkr_ops.host.config import HostConfig


def statuses(report: health.Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def details(report: health.Report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks}


def test_healthy_gateway_passes_every_layer_it_can_see() -> None:
    with peer(healthy) as (port, errors):
        report = health.run(HostConfig(api_port=port, memory_ceiling_mb=100_000))
    assert not errors
    assert statuses(report) == {"service": "skip", "display": "skip", "process": "ok",
                                "port": "ok", "api": "ok", "upstream": "ok", "memory": "ok"}
    assert details(report)["upstream"] == "connected to IBKR; farms OK: usfarm"
    assert report.healthy
    assert report.server_version == 176
    assert report.accounts == ("DU111", "DU222")
    # The listener on the port is this very test process.
    assert f"pid {os.getpid()} " in details(report)["process"]


def test_port_closed_fails_port_and_does_not_try_the_api() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = health.run(HostConfig(api_port=port))
    assert statuses(report)["port"] == "fail"
    assert statuses(report)["api"] == "skip"
    assert statuses(report)["memory"] == "skip"
    assert not report.healthy


def test_port_open_but_silent_fails_the_api_layer() -> None:
    def silent(conn: Conn) -> None:
        while True:
            conn._fill()

    with peer(silent) as (port, _):
        report = health.run(HostConfig(api_port=port, health_timeout_s=0.5))
    assert statuses(report)["port"] == "ok"
    assert statuses(report)["api"] == "fail"
    assert "handshake" in details(report)["api"]
    assert not report.healthy


def test_memory_over_the_ceiling_fails_and_near_it_warns() -> None:
    rss_mb = (proc.rss_bytes(os.getpid()) or 0) / 2**20
    with peer(healthy) as (port, _):
        over = health.run(HostConfig(api_port=port, memory_ceiling_mb=max(int(rss_mb / 2), 1)))
        near = health.run(HostConfig(api_port=port, memory_ceiling_mb=int(rss_mb) + 1,
                                     memory_warn_ratio=0.5))
    assert statuses(over)["memory"] == "fail"
    assert not over.healthy
    assert statuses(near)["memory"] == "warn"
    assert near.healthy


def test_report_json_shape_matches_the_contract() -> None:
    with peer(healthy) as (port, _):
        data = health.run(HostConfig(api_port=port)).to_dict()
    assert set(data) == {"healthy", "checks", "server_version", "accounts", "elapsed_ms"}
    assert [c["name"] for c in data["checks"]] == list(health.LAYERS)
    assert all(set(c) == {"name", "status", "detail", "ms"} for c in data["checks"])


def test_summary_is_one_line_naming_failures() -> None:
    report = health.Report(
        checks=(health.Check("port", "fail", "refused", 1.0),
                health.Check("api", "skip", "not tried", 0.0)),
        elapsed_ms=3.0)
    line = report.summary()
    assert "\n" not in line
    assert line.startswith("UNHEALTHY: port=fail api=skip")
    assert "port: refused" in line


def test_remote_api_host_skips_the_process_layer() -> None:
    report = health.run(HostConfig(api_host="192.0.2.1", health_timeout_s=0.3))
    assert statuses(report)["process"] == "skip"


def lost_link(conn: Conn) -> None:
    """Logged in, but IBKR out of reach: 1100 at connect, the time request unanswered."""
    logged_in(conn, (1100, "Connectivity between IB and Trader Workstation has been lost."))
    conn.read()
    conn.read()


def test_a_lost_link_to_ibkr_is_upstreams_news_not_the_apis(tmp_path: Path) -> None:
    config = HostConfig(memory_ceiling_mb=100_000, state_dir=str(tmp_path))
    with peer(healthy, lost_link) as (port, _):
        report = health.run(dataclasses.replace(config, api_port=port))
    assert statuses(report)["api"] == "ok"
    assert "no server time" in details(report)["api"]
    assert statuses(report)["upstream"] == "warn"
    assert details(report)["upstream"].startswith("IBKR connection lost for 0 s")
    assert report.healthy
    # A loss that began long enough ago is an outage.
    (tmp_path / upstream.STATE_FILE).write_text(json.dumps({"lost_since": time.time() - 600}))
    with peer(healthy, lost_link) as (port, _):
        report = health.run(dataclasses.replace(config, api_port=port))
    assert statuses(report)["upstream"] == "fail"
    assert not report.healthy


def test_a_broken_farm_warns_and_the_gateway_stays_healthy() -> None:
    def broken(conn: Conn) -> None:
        logged_in(conn, (2103, "Market data farm connection is broken:usfarm"))
        conn.read()
        conn.send(49, 1, 5)

    with peer(broken) as (port, _):
        report = health.run(HostConfig(api_port=port, memory_ceiling_mb=100_000))
    assert statuses(report)["upstream"] == "warn"
    assert details(report)["upstream"] == "market data farm usfarm broken (2103)"
    assert report.healthy and report.status == "warn"


def test_connected_bots_are_counted_and_the_probe_is_not_one() -> None:
    with peer(healthy) as (port, _):
        alone = health.run(HostConfig(api_port=port, memory_ceiling_mb=100_000))
        with socket.create_connection(("127.0.0.1", port)), \
                socket.create_connection(("127.0.0.1", port)):
            two = health.run(HostConfig(api_port=port, memory_ceiling_mb=100_000))
    assert (alone.api_clients, two.api_clients) == (0, 2)


def test_ibkrs_desupport_notice_at_connect_is_kept_and_the_gateway_stays_ok() -> None:
    """Message 2172 is news for the daily desupport warning, not a health problem."""
    text = ("The version of the application you are running, 1045.1, needs to be upgraded, as "
            "it will be desupported on 20261215. The minimum supported version at that time "
            "will be 1050.1.")

    def noticed(conn: Conn) -> None:
        logged_in(conn, (2104, "Market data farm connection is OK:usfarm"), (2172, text))
        conn.read()
        conn.send(49, 1, 5)

    with peer(noticed) as (port, _):
        report = health.run(HostConfig(api_port=port, memory_ceiling_mb=100_000))
    assert report.version_notice == text
    assert statuses(report)["api"] == statuses(report)["upstream"] == "ok"

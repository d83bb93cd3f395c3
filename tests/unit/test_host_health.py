"""Health layers against a scripted API peer; off systemd the systemd layers say skip."""

from __future__ import annotations

import os
import socket

from host_peer import Conn, healthy, peer

from ibkr_ops.host import health, proc
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
                                "port": "ok", "api": "ok", "memory": "ok"}
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

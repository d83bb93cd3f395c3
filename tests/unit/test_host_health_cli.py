"""`ibkr-health-check` as a process: exit codes, --json, one-line errors, the journal line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_peer import healthy, peer
from host_run import run_tool


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A real datagram socket standing in for /run/systemd/journal/socket."""
    path = str(tmp_path / "journal.socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield path, sock


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthy_json_and_exit_0() -> None:
    with peer(healthy) as (port, _):
        result = run_tool("ibkr-health-check", "--port", str(port), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["healthy"] is True
    assert data["accounts"] == ["DU111", "DU222"]
    assert {c["name"]: c["status"] for c in data["checks"]}["api"] == "ok"


def test_unhealthy_exit_1_with_a_readable_table() -> None:
    result = run_tool("ibkr-health-check", "--port", str(closed_port()))
    assert result.returncode == 1
    assert "port     fail" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("UNHEALTHY")


@pytest.mark.parametrize("args", [
    ["--port", "x"], ["--port", "0"], ["--port", "70000"], ["--timeout", "-1"],
    ["--client-id", "abc"], ["--bogus"],
])
def test_bad_usage_exits_2_with_one_line(args: list[str]) -> None:
    result = run_tool("ibkr-health-check", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ibkr-health-check: ")


@pytest.mark.parametrize("content", [None, "{not json", '{"api_port": "4002"}'])
def test_unreadable_or_invalid_settings_exit_2_with_one_line(tmp_path: Path,
                                                              content: str | None) -> None:
    path = tmp_path / "ops.json"
    if content is None:
        path.mkdir()  # unreadable as a file, even for root
    else:
        path.write_text(content)
    result = run_tool("ibkr-health-check", "--config", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_file_supplies_port_and_thresholds(tmp_path: Path) -> None:
    with peer(healthy) as (port, _):
        path = tmp_path / "ops.json"
        path.write_text(json.dumps({"api_port": port, "memory_ceiling_mb": 1}))
        result = run_tool("ibkr-health-check", "--config", str(path), "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["api"]["status"] == "ok"
    assert checks["memory"]["status"] == "fail"
    assert result.returncode == 1


def test_every_run_writes_one_journal_entry(journal: tuple[str, socket.socket]) -> None:
    path, sock = journal
    result = run_tool("ibkr-health-check", "--port", str(closed_port()),
                      env={"IBKR_OPS_JOURNAL_SOCKET": path})
    assert result.returncode == 1
    entry = dict(line.split("=", 1) for line in sock.recv(65536).decode().splitlines())
    assert entry["SYSLOG_IDENTIFIER"] == "ibkr-health-check"
    assert entry["PRIORITY"] == "3"
    assert entry["IBKR_HEALTHY"] == "0"
    assert entry["MESSAGE"].startswith("UNHEALTHY: service=skip")
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(65536)

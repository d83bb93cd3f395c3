"""`ibkr-health-check` against the gateway simulator: each failure lands on the right layer,
with the right exit code, within the timeout."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from host_run import SCRIPTS
from sim_support import Sim, free_port

from ibkr_ops.host import health, ibapi, proc

SCRIPT = SCRIPTS / "ibkr-health-check"


def check(port: int, *args: str) -> tuple[int, dict[str, Any]]:
    # The 20 s guard is shorter than the 30 s faults below: a check that waited for the
    # fault instead of its own timeout fails here.
    result = subprocess.run([sys.executable, str(SCRIPT), "--port", str(port), "--json", *args],
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def layers(data: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in data["checks"]}


def detail(data: dict[str, Any], name: str) -> str:
    return next(c["detail"] for c in data["checks"] if c["name"] == name)


def test_healthy_simulator(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory()
    code, data = check(sim.port)
    assert code == 0
    assert layers(data) == {"service": "skip", "display": "skip", "process": "ok", "port": "ok",
                            "api": "ok", "upstream": "ok", "memory": "ok"}
    assert detail(data, "upstream") == "connected to IBKR; farms OK: usfarm, ushmds, secdefnj"
    assert data["server_version"] == 176
    assert data["accounts"]
    assert f"pid {sim.proc.pid} " in detail(data, "process")


def test_port_closed() -> None:
    code, data = check(free_port())
    assert code == 1
    assert layers(data)["port"] == "fail"
    assert layers(data)["api"] == "skip"


@pytest.mark.parametrize("fault", ["hang", "slow-handshake=30"])
def test_port_open_api_silent_fails_api_within_the_timeout(sim_factory: Callable[..., Sim],
                                                           fault: str) -> None:
    sim = sim_factory("--fault", fault)
    code, data = check(sim.port, "--timeout", "1.5")
    assert code == 1
    assert layers(data)["port"] == "ok"
    assert layers(data)["api"] == "fail"
    assert "handshake stage before the timeout (timeout 1.5 s)" in detail(data, "api")


def test_slow_handshake_within_the_timeout_is_healthy(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory("--fault", "slow-handshake=0.5")
    code, data = check(sim.port, "--timeout", "10")
    assert code == 0
    assert layers(data)["api"] == "ok"


def test_login_rejected_leaves_the_api_port_closed(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory("--fault", "reject-login", wait="control")
    sim.wait_log("login", timeout=10)
    code, data = check(sim.port)
    assert code == 1
    assert layers(data)["port"] == "fail"


def test_memory_leak_crosses_the_ceiling(sim_factory: Callable[..., Sim],
                                         tmp_path: Path) -> None:
    sim = sim_factory("--fault", "leak=1200")  # 20 MB/s
    start_mb = (proc.rss_bytes(sim.proc.pid) or 0) / 2**20
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"memory_ceiling_mb": int(start_mb) + 40,
                                    "memory_warn_ratio": 0.5}))
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "fail" not in seen:
        code, data = check(sim.port, "--config", str(settings))
        seen.append(layers(data)["memory"])
        time.sleep(0.3)
    assert seen[-1] == "fail", seen
    assert code == 1
    assert "MB resident of a" in detail(data, "memory")


def test_probe_client_id_in_use_moves_on(sim_factory: Callable[..., Sim]) -> None:
    """A bot already on clientId 999: the check reports it and still proves the API."""
    sim = sim_factory()
    with ibapi.session("127.0.0.1", sim.port, 999, 5):
        code, data = check(sim.port, "--client-id", "999")
    assert code == 0
    assert "clientId 999 in use so used 1000" in detail(data, "api")


def test_x_display_probe_against_real_xvfb(xvfb: str) -> None:
    assert health.x_display_answers(xvfb, timeout=5) == "accepted"
    assert health.x_display_answers(":139", timeout=1) is None

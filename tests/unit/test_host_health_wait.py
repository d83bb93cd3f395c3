"""`ibkr-health-check --wait`: blocks until the simulated Gateway logs in, or gives up clearly."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from host_run import SCRIPTS, run_tool
from sim_support import Sim, free_port
from test_host_health_cli import journal  # noqa: F401 - the journal socket fixture

from ibkr_ops.host import health
from ibkr_ops.host.config import HostConfig

SRC = Path(__file__).resolve().parents[2] / "src"
NOBODY = 65534


def test_waits_through_a_slow_login_then_exits_0(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory("--login-delay", "3", wait=None)
    result = run_tool("ibkr-health-check", "--port", str(sim.port), "--wait", "60")
    assert result.returncode == 0, result.stderr
    assert "API listening" in sim.log()
    assert result.stdout.startswith("ready after ") and "; healthy: " in result.stdout
    # What it waited for, with the time so far, before the API answered.
    first = result.stderr.splitlines()[0]
    assert first.startswith("waiting for the Gateway (0 s of 60 s): "), result.stderr
    assert "port: " in first or "api: " in first


def test_timeout_exits_1_with_one_line_naming_the_failing_layers(
        journal: tuple[str, socket.socket]) -> None:  # noqa: F811
    path, sock = journal
    port = free_port()
    result = run_tool("ibkr-health-check", "--port", str(port), "--wait", "2",
                      env={"IBKR_OPS_JOURNAL_SOCKET": path})
    assert result.returncode == 1
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ibkr-health-check: still not healthy after 2 s, gave up: ")
    assert f"port: 127.0.0.1:{port}: Connection refused" in last
    # Progress lines say what is awaited; only the final line is a journal entry.
    assert all(ln.startswith("waiting for the Gateway (") for ln in
               result.stderr.strip().splitlines()[:-1])
    entry = dict(line.split("=", 1) for line in sock.recv(65536).decode().splitlines())
    assert entry["PRIORITY"] == "3" and entry["IBKR_HEALTHY"] == "0"
    assert entry["MESSAGE"] == last.removeprefix("ibkr-health-check: ")


@pytest.mark.parametrize("args", [
    ["--wait", "10", "--notify"], ["--wait", "0"], ["--wait", "soon"], ["--wait"],
])
def test_bad_wait_usage_exits_2_with_one_line(args: list[str]) -> None:
    result = run_tool("ibkr-health-check", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ibkr-health-check: ")


def test_wait_json_prints_the_final_report(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory("--login-delay", "1", wait=None)
    result = run_tool("ibkr-health-check", "--port", str(sim.port), "--wait", "60", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["healthy"] is True and data["accounts"]


def test_wait_function_reports_progress_until_healthy(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory("--login-delay", "2", wait=None)
    seen: list[str] = []
    report, waited = health.wait(HostConfig(api_port=sim.port), 60, seen.append, poll_s=0.2)
    assert report.healthy and waited > 0
    assert seen and all(s.startswith("waiting for the Gateway (") for s in seen)


def _as_nobody() -> list[str]:
    """An interpreter command that runs as nobody, or skip: the check must work for a bot's
    User=, where another user's /proc entries are closed."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running a tool as another user needs root and setpriv")
    for python in (sys.executable, "/usr/bin/python3"):
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                   python]
        probe = subprocess.run([*command, "-c", "import ibkr_ops.host.cli"], check=False,
                               capture_output=True, env={"PYTHONPATH": str(SRC)})
        if probe.returncode == 0:
            return command
    pytest.skip("no interpreter and source tree that nobody may read")


def test_a_non_root_caller_degrades_instead_of_failing(sim_factory: Callable[..., Sim]) -> None:
    command = _as_nobody()
    sim = sim_factory()
    environ = {"PYTHONPATH": str(SRC), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run([*command, str(SCRIPTS / "ibkr-health-check"), "--port", str(sim.port),
                           "--json", "--wait", "30"], capture_output=True, text=True, env=environ,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    # The simulator runs as root: its socket is visible, its process is not.
    assert checks["process"]["status"] == "skip"
    assert f"uid {NOBODY} cannot see" in checks["process"]["detail"]
    assert checks["api"]["status"] == "ok"

"""Shared fixtures: free ports, a simulated-Gateway process factory, Xvfb, client interpreters."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BOT_CLIENT = REPO / "tests" / "integration" / "bot_client.py"


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def send_line(port: int, line: str, timeout: float = 5, read_all: bool = False) -> str:
    """Send one line to a line-based server (control port, IBC command server); return replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(line.encode() + b"\n")
        data = b""
        with contextlib.suppress(TimeoutError):
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if not read_all and data.endswith(b"\n"):
                    break
    return data.decode()


@dataclass
class Sim:
    """A simulated Gateway running as a subprocess of the test."""

    proc: subprocess.Popen[bytes]
    port: int
    control_port: int
    settings_dir: Path
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 10) -> None:
        wait_for(lambda: text in self.log(), timeout, f"log line {text!r}")

    def ctl(self, command: str) -> str:
        return send_line(self.control_port, command).strip()

    def status(self) -> dict[str, object]:
        reply = self.ctl("STATUS")
        assert reply.startswith("OK "), reply
        return dict(json.loads(reply[3:]))

    def wait_exit(self, timeout: float = 10) -> int:
        return self.proc.wait(timeout)

    @property
    def logins_file(self) -> Path:
        return self.settings_dir / "ibkr-gateway-sim-logins.jsonl"


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """Start ``ibkr-gateway-sim`` subprocesses on free ports; they are killed after the test.

    ``sim_factory(*args, wait="api"|"control"|None, env=None, headless=True)``: extra CLI
    arguments; ``wait="api"`` (default) returns once the API port accepts connections.
    """
    started: list[Sim] = []

    def start(*args: str, wait: str | None = "api", env: dict[str, str] | None = None,
              headless: bool = True, port: int | None = None, timeout: float = 15) -> Sim:
        api_port = port or free_port()
        control_port = free_port()
        index = len(started)
        settings = tmp_path / f"settings{index}"
        log_path = tmp_path / f"sim{index}.log"
        command = [sys.executable, "-m", "ibkr_ops.sim", "--port", str(api_port),
                   "--control-port", str(control_port), "--settings-dir", str(settings),
                   "--second-factor-delay", "0.2", *args]
        if headless:
            command.append("--headless")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
        full_env.update(env or {})
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        sim = Sim(proc, api_port, control_port, settings, log_path)
        started.append(sim)
        if wait == "api":
            wait_for(lambda: port_open(api_port) or proc.poll() is not None, timeout,
                     "the simulator's API port")
            assert proc.poll() is None, f"simulator exited early:\n{sim.log()}"
        elif wait == "control":
            wait_for(lambda: port_open(control_port) or proc.poll() is not None, timeout,
                     "the simulator's control port")
        return sim

    yield start
    for sim in started:
        if sim.proc.poll() is None:
            sim.proc.kill()
            sim.proc.wait(5)


def run_client(python: str, port: int, client_id: int, scenario: str, arg: float | None = None,
               timeout: float = 60) -> dict[str, object]:
    """Run tests/integration/bot_client.py under ``python``; return its last JSON line."""
    command = [python, str(BOT_CLIENT), str(port), str(client_id), scenario]
    if arg is not None:
        command.append(str(arg))
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"client failed:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(lines[-1]))


@pytest.fixture(scope="session")
def async_python() -> str:
    """The interpreter with ib_async 2.1.0 (this test venv)."""
    pytest.importorskip("ib_async", reason="ib_async is not installed in the test venv")
    return sys.executable


@pytest.fixture(scope="session")
def insync_python() -> str:
    """The interpreter of the separate ib_insync 0.9.86 venv (IBKR_OPS_INSYNC_PYTHON)."""
    python = os.environ.get("IBKR_OPS_INSYNC_PYTHON", "")
    if not python:
        pytest.skip("IBKR_OPS_INSYNC_PYTHON is not set (nox -s tests sets it; locally: "
                    "python3 -m venv /tmp/insync && /tmp/insync/bin/pip install ib_insync==0.9.86)")
    if not Path(python).exists():
        pytest.skip(f"IBKR_OPS_INSYNC_PYTHON={python} does not exist")
    return python


@pytest.fixture(params=["ib_async", "ib_insync"])
def client_python(request: pytest.FixtureRequest) -> str:
    """Each real bot library in turn."""
    name = "async_python" if request.param == "ib_async" else "insync_python"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A real X server (Xvfb) on a free display; yields the DISPLAY value."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed (apt-get install -y xvfb): the simulated Gateway "
                    "needs an X display like the real one")
    for number in range(91, 140):
        if not Path(f"/tmp/.X{number}-lock").exists() and \
                not Path(f"/tmp/.X11-unix/X{number}").exists():
            break
    else:
        pytest.skip("no free X display number")
    proc = subprocess.Popen([binary, f":{number}", "-nolisten", "tcp", "-screen", "0",
                             "1024x768x24"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: Path(f"/tmp/.X11-unix/X{number}").exists() or proc.poll() is not None, 10,
             "Xvfb's socket")
    if proc.poll() is not None:
        pytest.skip(f"Xvfb :{number} did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(5)

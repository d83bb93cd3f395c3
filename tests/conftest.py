"""Shared fixtures: free ports, a simulated-Gateway process factory, Xvfb, client interpreters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import jvm_support
import pytest
from jvm_support import Jvm
from sim_support import Sim, free_port, port_open, wait_for


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
    display, proc = _start_xvfb()
    yield display
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def own_xvfb() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An Xvfb for this test alone (it may kill it): (DISPLAY, process)."""
    display, proc = _start_xvfb()
    yield display, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    number = display.lstrip(":")  # a killed Xvfb leaves its lock and socket behind
    for leftover in (f"/tmp/.X{number}-lock", f"/tmp/.X11-unix/X{number}"):
        Path(leftover).unlink(missing_ok=True)


def _start_xvfb() -> tuple[str, subprocess.Popen[bytes]]:
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
    return f":{number}", proc


def pytest_report_header(config: pytest.Config) -> str:
    """Say which IBC zip the IBC tests use."""
    real = os.environ.get("IBKR_OPS_IBC_ZIP", "")
    if real:
        return f"IBC scripts: real zip {real} (and the simulated zip)"
    return ("IBC scripts: IBKR_OPS_IBC_ZIP not set, only the simulated IBC zip is tested "
            "(the 'ibc' variants skip)")


@pytest.fixture(scope="session")
def jvm(tmp_path_factory: pytest.TempPathFactory) -> Jvm:
    """The test programs under tests/java, compiled once (skips without a JDK)."""
    return jvm_support.build(tmp_path_factory.mktemp("jvm"))

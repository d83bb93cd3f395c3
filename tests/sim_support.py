"""Helpers shared by the simulator's tests (ports, waits, line clients, subprocess clients)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BOT_CLIENT = REPO / "tests" / "integration" / "bot_client.py"


def real_ibc_zip() -> Path:
    """The real IBC Linux zip (IBKR_OPS_IBC_ZIP, as .ci/run sets it) that guest tests install:
    IBC's own scripts and Java code then log in to the Gateway stand-in. Skips, saying why,
    when it is not given (download IBCLinux-3.24.1.zip from IBC's releases)."""
    real = os.environ.get("IBKR_OPS_IBC_ZIP", "")
    if not real:
        pytest.skip("IBKR_OPS_IBC_ZIP is not set: guest tests run the real IBC (give the path "
                    "of IBCLinux-3.24.1.zip)")
    if not Path(real).is_file():
        pytest.fail(f"IBKR_OPS_IBC_ZIP={real} is not a file")
    return Path(real)


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

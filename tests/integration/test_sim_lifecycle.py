"""Login lifecycle, IBC's command server and start-up errors of the stand-alone simulator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sim_support import Sim, free_port, port_open, run_client, send_line, wait_for

from ibkr_ops.sim import logins


def run_sim(*args: str, env: dict[str, str] | None = None,
            timeout: float = 15) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "ibkr_ops.sim", *args], capture_output=True,
                          text=True, check=False, timeout=timeout, env=base)


def test_api_opens_only_after_login(sim_factory: Callable[..., Sim]) -> None:
    """With a login delay the API port stays closed until "Login has completed"."""
    sim = sim_factory("--login-delay", "1.5", wait="control")
    assert not port_open(sim.port)
    wait_for(lambda: port_open(sim.port), 10, "the API after the login")
    assert "Login has completed" in sim.log()


def test_second_factor_approved_by_control_command(sim_factory: Callable[..., Sim],
                                                   async_python: str) -> None:
    """manual second factor: nothing opens until the test plays the person with the phone."""
    sim = sim_factory("--second-factor", "manual", wait="control")
    sim.wait_log("Second Factor Authentication initiated")
    time.sleep(0.5)
    assert not port_open(sim.port)
    assert sim.status()["state"] == "second-factor"
    assert sim.ctl("APPROVE") == "OK approved"
    wait_for(lambda: port_open(sim.port), 5, "the API after approval")
    assert run_client(async_python, sim.port, 1, "connect")["ok"] is True
    assert sim.ctl("APPROVE").startswith("ERROR no second-factor prompt")


def test_command_server_replies_as_ibc(sim_factory: Callable[..., Sim]) -> None:
    """Replies and line handling of IBC's command server (Gateway variant)."""
    command_port = free_port()
    sim = sim_factory("--command-server-port", str(command_port))
    with socket.create_connection(("127.0.0.1", command_port), timeout=5) as sock:
        stream = sock.makefile("rwb")

        def ask(raw: bytes) -> bytes:
            stream.write(raw)
            stream.flush()
            return stream.readline()

        assert ask(b"ENABLEAPI\n") == b"ERROR ENABLEAPI is not valid for the IB Gateway\n"
        assert ask(b"reconnectaccount\r\n") == b"OK \n"
        assert ask(b"\nRECONNECTDATA\r") == b"OK \n"
        assert ask(b"STOP \n") == b"ERROR Command invalid\n"  # not trimmed, as IBC
        assert ask(b"EXIT\n") == b"OK Goodbye\n"
        assert stream.readline() == b""  # closed after EXIT
    assert sim.proc.poll() is None


def test_restart_command_in_process(sim_factory: Callable[..., Sim], async_python: str) -> None:
    """Stand-alone, RESTART logs in again in-process without a second factor."""
    command_port = free_port()
    sim = sim_factory("--command-server-port", str(command_port), "--restart-delay", "0")
    reply = send_line(command_port, "RESTART", read_all=True)
    assert reply.startswith("OK RESTART in progress\nOK RESTART at ")
    wait_for(lambda: sim.status()["logins"] == 2, 10, "the second login")
    log = sim.log()
    assert log.count("Second Factor Authentication initiated") == 1
    assert "Re-starting session" in log
    assert run_client(async_python, sim.port, 1, "connect")["ok"] is True
    warm = [e.get("warm") for e in logins.read([sim.logins_file]) if e["event"] == "login"]
    assert warm == [False, True]


def test_restart_exits_when_asked(sim_factory: Callable[..., Sim]) -> None:
    """--restart-exits: the IBC contract (autorestart file under the settings dir, exit 0)."""
    sim = sim_factory("--restart-exits", "--login-id", "alice")
    assert sim.ctl("RESTART") == "OK restarting"
    assert sim.wait_exit(10) == 0
    files = list(sim.settings_dir.glob("*/autorestart"))
    assert len(files) == 1


def test_stop_command_and_sigterm(sim_factory: Callable[..., Sim]) -> None:
    """STOP exits 0; SIGTERM exits 143 like the JVM; both log out."""
    first = sim_factory()
    first.ctl("STOP")
    assert first.wait_exit(10) == 0
    second = sim_factory()
    second.proc.send_signal(signal.SIGTERM)
    assert second.wait_exit(10) == 143
    for sim in (first, second):
        assert [e["event"] for e in logins.read([sim.logins_file])] == ["login", "logout"]


def test_missing_ini(tmp_path: Path) -> None:
    """A missing config.ini: one line and IBC's exit status (1103 % 256)."""
    done = run_sim("--ibc-ini", str(tmp_path / "nope.ini"), "--headless")
    assert done.returncode == 1103 % 256
    assert len(done.stderr.strip().splitlines()) == 1 and "nope.ini" in done.stderr


# A line without '=' is not malformed: java.util.Properties, which IBC reads config.ini with,
# takes "this is not a setting" as the key "this" (the simulator reads it the same way).
@pytest.mark.parametrize("content", ["OverrideTwsApiPort=four\n", "TradingMode=demo\n"])
def test_malformed_ini(tmp_path: Path, content: str) -> None:
    """A malformed config.ini: one line naming the problem and a non-zero exit."""
    ini = tmp_path / "config.ini"
    ini.write_text(content)
    done = run_sim("--ibc-ini", str(ini), "--headless")
    assert done.returncode not in (0, 1)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_port_in_use(tmp_path: Path) -> None:
    """A busy API port: one line and exit 1, at once rather than after the login."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_sim("--port", str(port), "--headless", "--settings-dir", str(tmp_path))
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and str(port) in done.stderr


@pytest.mark.parametrize("display", ["", ":1999"])
def test_needs_a_display(tmp_path: Path, display: str) -> None:
    """No DISPLAY, or no X server behind it: one line and exit 1."""
    env = {"DISPLAY": display} if display else {}
    if not display:
        os.environ.pop("DISPLAY", None)
    done = run_sim("--port", str(free_port()), "--settings-dir", str(tmp_path), env=env)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "X11" in done.stderr


def test_runs_with_a_real_display(tmp_path: Path, xvfb: str, async_python: str) -> None:
    """With Xvfb's DISPLAY the simulator starts without --headless."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
    env["DISPLAY"] = xvfb
    proc = subprocess.Popen([sys.executable, "-m", "ibkr_ops.sim", "--port", str(port),
                             "--settings-dir", str(tmp_path), "--second-factor", "off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, 10, "the API")
        assert run_client(async_python, port, 1, "connect")["ok"] is True
    finally:
        proc.terminate()
        proc.wait(10)


def test_command_line_contains_ibgateway_under_ibc_only() -> None:
    """The console script is documented; `python -m ibkr_ops.sim --help` works."""
    done = run_sim("--help")
    assert done.returncode == 0 and "--fault" in done.stdout


def test_java_form_without_password_waits_at_the_login_dialog(tmp_path: Path, xvfb: str) -> None:
    """As "java … IbcGateway INI MODE" with no IbPassword: no login, no API, still running."""
    ini = tmp_path / "config.ini"
    port = free_port()
    ini.write_text(f"IbLoginId=jdoe\nIbPassword=\nOverrideTwsApiPort={port}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
    env["DISPLAY"] = xvfb
    log = tmp_path / "java.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ibkr_ops.sim", "--as-java", "-Xmx768m",
                                 f"-DjtsConfigDir={tmp_path / 'settings'}",
                                 "ibcalpha.ibc.IbcGateway", str(ini), "paper"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "must log in manually" in log.read_text(), 10, "the manual-login line")
        assert proc.poll() is None and not port_open(port)
    finally:
        proc.kill()
        proc.wait(5)


def test_x_server_loss_ends_the_process_like_the_jvm(
        sim_factory: Callable[..., Sim],
        own_xvfb: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Xvfb killed: Java's X I/O error line, exit 1, and no logout (Xlib's exit runs no hooks)."""
    display, xvfb = own_xvfb
    sim = sim_factory("--second-factor", "off", headless=False, env={"DISPLAY": display})
    assert sim.status()["display_connected"] is True
    xvfb.kill()
    assert sim.wait_exit(10) == 1
    assert (f"X connection to {display} host broken (explicit kill or server shutdown)"
            in sim.log())
    events = [e["event"] for e in logins.read([sim.logins_file])]
    assert events == ["login"]  # the session stays open until the next login finds it stale

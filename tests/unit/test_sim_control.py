"""The simulator's control channel, in-process: each command parsed and answered, and a real
Gateway's login, restart and stop driven by those commands alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sim_support import free_port

from ibkr_ops.sim import control, logins
from ibkr_ops.sim.config import SimConfig
from ibkr_ops.sim.gateway import Gateway


def make_gateway(tmp_path: Path, **settings: Any) -> Gateway:
    cfg = SimConfig(port=free_port(), headless=True, settings_dir=tmp_path, **settings)
    cfg.finish()
    return Gateway(cfg, out=lambda _line: None)


def status(gw: Gateway) -> dict[str, object]:
    reply = control.answer(gw, "STATUS")
    assert reply.startswith("OK ")
    result: dict[str, object] = json.loads(reply[3:])
    return result


async def until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("line", "reply"), [
    ("APPROVE", "ERROR no second-factor prompt is pending (state starting)"),
    ("RESTART", "ERROR not logged in"),
    ("FAULT", "ERROR usage: FAULT NAME[=VALUE]"),
    ("FAULT  ", "ERROR usage: FAULT NAME[=VALUE]"),
    ("FAULT gremlins", "ERROR unknown fault 'gremlins'; known: connectivity-lost, crash-after, "
     "existing-session, farm-broken, hang, leak, no-login-dialog, reject-login, slow-handshake, "
     "slow-stop, twofa-timeout"),
    ("FAULT slow-handshake", "ERROR fault slow-handshake needs a value: slow-handshake=NUMBER"),
    ("FAULT leak=-1", "ERROR fault leak: the value must not be negative"),
    ("FAULT hang=1", "ERROR fault hang takes no value"),
    ("HELLO", "ERROR unknown command; use STATUS, APPROVE, FAULT, CLEAR, RESTART or STOP"),
])
def test_each_command_is_parsed_and_refused_with_its_reason(tmp_path: Path, line: str,
                                                           reply: str) -> None:
    assert control.answer(make_gateway(tmp_path), line) == reply


def test_status_reports_the_gateway_before_login(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, accounts=["DU111"])
    assert control.answer(gw, "  status ") == control.answer(gw, "STATUS")
    assert status(gw) | {"pid": 0} == {
        "pid": 0, "state": "starting", "logged_in": False, "warm": False,
        "trading_mode": "paper", "accounts": ["DU111"], "api_port": gw.cfg.api_port,
        "api_open": False, "clients": [], "connections": 0, "logins": 0, "faults": {},
        "leaked_mb": 0.0, "heap_mb": None, "display_connected": False}


def test_faults_switched_on_and_cleared_by_name_or_all(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    assert control.answer(gw, "fault HANG") == "OK fault hang on"
    assert control.answer(gw, "FAULT slow-handshake=2.5") == "OK fault slow-handshake on"
    assert status(gw)["faults"] == {"hang": None, "slow-handshake": 2.5}
    assert control.answer(gw, "CLEAR hang") == "OK cleared"
    assert status(gw)["faults"] == {"slow-handshake": 2.5}
    assert control.answer(gw, "CLEAR") == "OK cleared"
    assert status(gw)["faults"] == {}


def test_a_login_restart_and_stop_driven_by_control_commands(tmp_path: Path) -> None:
    """A manual second factor waits for APPROVE; RESTART logs in again warm; STOP exits 0."""
    gw = make_gateway(tmp_path, second_factor="manual", restart_delay=0.0)

    async def drive() -> int:
        run = asyncio.ensure_future(gw.run())
        await until(lambda: gw.state == "second-factor", "the second-factor prompt")
        assert status(gw)["api_open"] is False
        assert control.answer(gw, "APPROVE") == "OK approved"
        await until(lambda: status(gw)["api_open"], "the API to open")
        assert control.answer(gw, "APPROVE") == \
            "ERROR no second-factor prompt is pending (state logged-in)"
        assert control.answer(gw, "RESTART") == "OK restarting"
        await until(lambda: status(gw)["logins"] == 2 and status(gw)["api_open"], "the relogin")
        assert status(gw)["warm"] is True
        assert control.answer(gw, "STOP") == "OK stopping"
        return await asyncio.wait_for(run, 10)

    assert asyncio.run(drive()) == 0
    events = [(e["event"], e.get("warm"), e.get("reason"))
              for e in logins.read([gw.cfg.logins_path])]
    assert events == [("login", False, None), ("logout", None, "restart"),
                      ("login", True, None), ("logout", None, "shutdown")]


def test_the_control_port_answers_each_line_as_java_splits_lines(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, control_port=free_port(), second_factor="off")

    async def drive() -> list[bytes]:
        run = asyncio.ensure_future(gw.run())
        await until(lambda: gw.logged_in, "the login")
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.cfg.control_port)
        writer.write(b"FAULT farm-broken\r\n\nCLEAR farm-broken\rSTOP\n")
        replies = [await reader.readline() for _ in range(3)]
        writer.close()
        assert await asyncio.wait_for(run, 10) == 0
        return replies

    assert asyncio.run(drive()) == [b"OK fault farm-broken on\n", b"OK cleared\n",
                                    b"OK stopping\n"]

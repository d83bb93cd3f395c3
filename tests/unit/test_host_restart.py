"""Restart mode choice around the weekly token reset, and the report after a restart."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from zoneinfo import ZoneInfo

import pytest

from ibkr_ops.errors import OpsError
from ibkr_ops.host import proc, restart
from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.systemd import UnitState

NY = ZoneInfo("America/New_York")


def unit(started: dt.datetime | None, active: bool = True) -> UnitState:
    return UnitState("ibkr-gateway.service", "loaded", "active" if active else "inactive",
                     "running" if active else "dead", 42, "/system.slice/ibkr-gateway.service",
                     started.timestamp() if started else None)


def ny(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


@pytest.mark.parametrize(("now", "reset"), [
    ("2026-11-30T16:30", "2026-11-29T01:00"),   # Monday after
    ("2026-11-29T00:59", "2026-11-22T01:00"),   # Sunday just before
    ("2026-11-29T01:00", "2026-11-29T01:00"),   # Sunday at the reset
    ("2026-03-09T16:30", "2026-03-08T01:00"),   # DST starts Sunday 02:00: 01:00 is EST
])
def test_last_token_reset(now: str, reset: str) -> None:
    assert restart.last_token_reset(ny(now), NY) == ny(reset)


def test_auto_is_cold_once_after_the_sunday_reset_then_warm() -> None:
    config = HostConfig()
    monday = ny("2026-11-30T16:30")
    assert restart.choose_mode(config, monday, unit(ny("2026-11-27T08:00")))[0] == "cold"
    assert restart.choose_mode(config, monday, unit(ny("2026-11-30T08:00")))[0] == "warm"
    # Tuesday: Monday's cold restart counts.
    assert restart.choose_mode(config, ny("2026-12-01T16:30"),
                               unit(ny("2026-11-30T16:31")))[0] == "warm"


def test_auto_cold_when_inactive_warm_off_systemd_explicit_modes_win() -> None:
    now = ny("2026-11-30T16:30")
    assert restart.choose_mode(HostConfig(), now, unit(None, active=False))[0] == "cold"
    assert restart.choose_mode(HostConfig(), now, None)[0] == "warm"
    cold_old = unit(ny("2026-11-27T08:00"))
    assert restart.choose_mode(HostConfig(restart_mode="warm"), now, cold_old)[0] == "warm"
    assert restart.choose_mode(HostConfig(restart_mode="cold"), now, unit(now))[0] == "cold"


def test_report_reclaimed_memory_and_levels() -> None:
    before = {"rss_mb": 1450.0, "uptime_s": 86000}
    after = proc.Snapshot(7, 610.0, 30)
    level, text = restart.Outcome("warm", True, 74, ("IBC: OK",), before, after).report()
    assert level == "info"
    assert text.splitlines()[0] == "Gateway restart (warm) done in 74 s"
    assert "before: 1450 MB resident, up 23 h 53 min" in text
    assert "reclaimed: 840 MB" in text
    assert restart.Outcome(restart.FALLBACK, True, 9, (), None, None).report()[0] == "warning"
    assert restart.Outcome("cold", False, 600, (), before, None).report()[0] == "error"


def serve_once(reply: bytes) -> tuple[int, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with server, server.accept()[0] as conn:
            conn.recv(100)
            conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_command_server_reply_skips_info_lines() -> None:
    port, thread = serve_once(b"INFO Restarting TWS\r\nOK RESTART at 04:31 PM\r\n")
    assert restart.send_command("127.0.0.1", port, "RESTART") == "OK RESTART at 04:31 PM"
    thread.join(5)


def test_command_server_closed_without_answer_is_an_error() -> None:
    port, thread = serve_once(b"")
    with pytest.raises(OpsError, match="closed without answering RESTART"):
        restart.send_command("127.0.0.1", port, "RESTART")
    thread.join(5)


def test_a_running_jvm_answers_exit() -> None:
    port, thread = serve_once(b"OK Goodbye\n")
    responds, why = restart.jvm_responds(HostConfig(command_server_port=port), 2)
    thread.join(5)
    assert responds is True, why


def test_a_frozen_jvm_takes_the_connection_and_says_nothing() -> None:
    """What kill -STOP leaves: the kernel completes the TCP handshake for the listening
    socket, but nobody accepts or answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=5) as server:
        config = HostConfig(command_server_port=server.getsockname()[1])
        responds, why = restart.jvm_responds(config, 0.5)
    assert responds is False
    assert why.endswith("within 0.5 s")


def test_nothing_listening_says_nothing_about_the_jvm() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    responds, why = restart.jvm_responds(HostConfig(command_server_port=port), 2)
    assert responds is None
    assert "refused" in why.lower()

"""Each fault, switched on by flag or at run time, as a client or an operator sees it."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sim_support import BOT_CLIENT, Sim, port_open, run_client

from ibkr_ops.sim import logins


def raw_handshake(port: int, timeout: float) -> tuple[float, bytes]:
    """Send the API handshake by hand; return (seconds until the reply, reply bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        text = b"v157..178"
        started = time.monotonic()
        sock.sendall(b"API\0" + struct.pack(">I", len(text)) + text)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return time.monotonic() - started, b""
        return time.monotonic() - started, data


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_hang_accepts_tcp_but_never_handshakes(sim_factory: Callable[..., Sim],
                                               async_python: str) -> None:
    """hang: the port accepts connections, the handshake never completes, connect times out."""
    sim = sim_factory("--fault", "hang")
    elapsed, reply = raw_handshake(sim.port, 1.5)
    assert reply == b"" and elapsed >= 1.4
    assert run_client(async_python, sim.port, 1, "connect", 2)["ok"] is False


def test_slow_handshake(sim_factory: Callable[..., Sim]) -> None:
    """slow-handshake=S: the version reply comes after S seconds."""
    sim = sim_factory("--fault", "slow-handshake=1.5")
    elapsed, reply = raw_handshake(sim.port, 5)
    assert elapsed >= 1.4
    assert b"178\0" in reply  # the probe offers v157..178


def test_crash_after(sim_factory: Callable[..., Sim]) -> None:
    """crash-after=S: the process dies by SIGKILL, leaving its session open in the record."""
    sim = sim_factory("--fault", "crash-after=1")
    assert sim.wait_exit(10) == -9
    assert [s.end for s in logins.sessions([sim.logins_file])] == [None]


def test_reject_login(sim_factory: Callable[..., Sim]) -> None:
    """reject-login: "Login failed", the API never opens, the process stays up (as IBC)."""
    sim = sim_factory("--fault", "reject-login", wait="control")
    sim.wait_log("Login failed")
    assert "Unrecognized Username or Password" in sim.log()
    assert not port_open(sim.port)
    assert sim.proc.poll() is None
    assert sim.status()["state"] == "login-failed"


def test_twofa_timeout_leaves_the_gateway_at_its_login_dialog(
        sim_factory: Callable[..., Sim]) -> None:
    """twofa-timeout: no approval arrives. As IBC 3.24 without relogin permitted, nothing
    exits (no 87): the Gateway waits at its login dialog and the API never opens."""
    sim = sim_factory("--fault", "twofa-timeout", "--second-factor-timeout", "1", wait="control")
    sim.wait_log("Re-login after second factor authentication timeout not required", 15)
    assert sim.proc.poll() is None
    assert sim.status()["state"] == "login-dialog"
    assert not port_open(sim.port)
    log = sim.log()
    assert "Second Factor Authentication initiated" in log
    assert "Login has completed" not in log


def test_leak_grows_resident_memory(sim_factory: Callable[..., Sim]) -> None:
    """leak=MB_PER_MIN: the resident set grows at about that rate."""
    sim = sim_factory("--fault", "leak=1200")  # 20 MB/s
    before = rss_mb(sim.proc.pid)
    time.sleep(2)
    grown = rss_mb(sim.proc.pid) - before
    assert 20 < grown < 80, grown


def test_existing_session_at_run_time(sim_factory: Callable[..., Sim], async_python: str) -> None:
    """existing-session: connected bots get 1100, requests stop being answered, session logged out."""
    sim = sim_factory()
    bot = subprocess.Popen([async_python, str(BOT_CLIENT), str(sim.port), "4", "hold", "3"],
                           stdout=subprocess.PIPE, text=True)
    assert bot.stdout is not None
    assert '"connected": true' in bot.stdout.readline()
    assert sim.ctl("FAULT existing-session") == "OK fault existing-session on"
    out, _ = bot.communicate(timeout=30)
    assert '"time_answered": false' in out and "1100" in out
    events = [e["event"] for e in logins.read([sim.logins_file])]
    assert events == ["login", "logout"]
    assert sim.status()["state"] == "session-lost"


def test_no_login_dialog_exits_88(sim_factory: Callable[..., Sim], tmp_path: Path) -> None:
    """no-login-dialog: after LoginDialogDisplayTimeout the process exits 88 (IBC relaunches)."""
    ini = tmp_path / "config.ini"
    ini.write_text("IbLoginId=u\nIbPassword=p\nTradingMode=paper\nLoginDialogDisplayTimeout=1\n")
    sim = sim_factory("--ibc-ini", str(ini), "--fault", "no-login-dialog", wait=None)
    assert sim.wait_exit(10) == 88


def test_faults_switch_at_run_time(sim_factory: Callable[..., Sim], async_python: str) -> None:
    """FAULT hang breaks a running instance for new clients; CLEAR repairs it."""
    sim = sim_factory()
    assert run_client(async_python, sim.port, 1, "connect")["ok"] is True
    assert sim.ctl("FAULT hang") == "OK fault hang on"
    assert run_client(async_python, sim.port, 2, "connect", 1.5)["ok"] is False
    assert sim.ctl("CLEAR") == "OK cleared"
    assert run_client(async_python, sim.port, 3, "connect")["ok"] is True
    assert sim.ctl("FAULT bogus").startswith("ERROR unknown fault")


def test_runtime_crash_after(sim_factory: Callable[..., Sim]) -> None:
    """FAULT crash-after=S at run time kills the process S seconds later."""
    sim = sim_factory()
    assert sim.ctl("FAULT crash-after=0.5").startswith("OK")
    assert sim.wait_exit(10) == -9


def test_two_gateways_on_one_account_are_detected(sim_factory: Callable[..., Sim],
                                                  tmp_path: Path) -> None:
    """The shared login record shows when two processes held one live account at once."""
    record = tmp_path / "logins.jsonl"
    args = ("--trading-mode", "live", "--login-id", "jdoe", "--logins-file", str(record))
    first = sim_factory(*args)
    first.ctl("STOP")
    assert first.wait_exit(10) == 0
    second = sim_factory(*args)
    assert logins.overlaps([record]) == []
    third = sim_factory(*args)
    pairs = logins.overlaps([record])
    assert len(pairs) == 1 and pairs[0][0].account.startswith("U")
    check = subprocess.run([sys.executable, "-m", "ibkr_ops.sim", "logins", str(record)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 1 and check.stdout.startswith("overlap: U")
    assert second.proc.poll() is None and third.proc.poll() is None

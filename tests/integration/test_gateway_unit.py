"""The installed Gateway unit on a real systemd guest: display loss, JVM heap, clean stop.

The real IBC zip named by IBKR_OPS_IBC_ZIP (skipped without it) runs the Gateway stand-in on
the guest's Java runtime.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from migrate_support import GATEWAY_DIR, LOGINS, deployment, health, run, say
from sim_support import real_ibc_zip

from ibkr_ops import demo, sandbox
from ibkr_ops.remote.install import install_host
from ibkr_ops.sandbox.paths import Layout
from ibkr_ops.settings import Deployment

GATEWAY = "ibkr-gateway.service"
DISPLAY = "xvfb.service"
VMOPTIONS = f"{GATEWAY_DIR}/ibgateway.vmoptions"


@pytest.fixture(scope="module")
def ibc_zip() -> Path:
    return real_ibc_zip()


@pytest.fixture(scope="module")
def guest(sandbox_layout: Layout, ibc_zip: Path) -> Iterator[sandbox.Guest]:
    """A guest of this module's own: its tests kill Xvfb and stop the Gateway."""
    name = "unit-real-ibc"
    (found,) = sandbox.up([name])
    try:
        yield found
    finally:
        sandbox.down(name)


@pytest.fixture(scope="module")
def install(guest: sandbox.Guest, ibc_zip: Path) -> Callable[[Deployment], None]:
    """Install (or converge) the module's guest through the real install path; healthy after."""

    def apply(d: Deployment) -> None:
        options = dataclasses.replace(demo.install_options(ibc_zip, 120.0), allow_live_switch=True)
        report = install_host(guest.name, d, options, say)
        assert report.error is None, report.error

    return apply


@pytest.fixture(scope="module")
def installed(guest: sandbox.Guest, install: Callable[[Deployment], None]) -> str:
    install(deployment())
    return guest.name


def show(name: str, unit: str, *props: str) -> dict[str, str]:
    out = run(name, f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def java_cmdline(name: str) -> str:
    """The JVM's command line ("java … IbcGateway /etc/ibkr/config.ini …")."""
    return run(name, "for p in $(pgrep -f '[j]ava.*IbcGateway'); do tr '\\0' ' ' "
                     "< /proc/$p/cmdline; echo; done").strip()


def wait_healthy(name: str, timeout: float) -> dict[str, object]:
    """Poll the installed health check until it passes; the last report either way."""
    deadline = time.monotonic() + timeout
    report: dict[str, object] = {}
    while time.monotonic() < deadline:
        report = health(name)
        if report.get("healthy"):
            break
        time.sleep(1)
    return report


def journal_since(name: str, cursor: str) -> str:
    return run(name, f"journalctl --no-pager -o cat --after-cursor={shlex.quote(cursor)}")


def cursor(name: str) -> str:
    out = run(name, "journalctl --no-pager -n 0 --show-cursor")
    return out.rsplit("-- cursor: ", 1)[-1].strip()


def test_killed_xvfb_brings_back_display_then_gateway(installed: str) -> None:
    """kill -9 Xvfb: the JVM dies with its X connection, both units come back, Xvfb first."""
    props = ("MainPID", "ActiveState", "ExecMainStartTimestampMonotonic", "NRestarts")
    before_x, before_gw = show(installed, DISPLAY, *props), show(installed, GATEWAY, *props)
    assert before_x["ActiveState"] == before_gw["ActiveState"] == "active"
    mark = cursor(installed)
    started = time.monotonic()
    run(installed, f"kill -9 {before_x['MainPID']}")
    deadline = started + 90
    while time.monotonic() < deadline:
        x, gw = show(installed, DISPLAY, *props), show(installed, GATEWAY, *props)
        if (x["ActiveState"] == gw["ActiveState"] == "active"
                and x["MainPID"] not in ("0", before_x["MainPID"])
                and gw["MainPID"] not in ("0", before_gw["MainPID"])):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"units not both back within 90 s: {x} {gw}\n"
                    f"{journal_since(installed, mark)}")
    report = wait_healthy(installed, 120)
    took = time.monotonic() - started
    assert report.get("healthy"), json.dumps(report)
    print(f"Xvfb kill -9 -> healthy in {took:.1f} s")
    x_start = int(x["ExecMainStartTimestampMonotonic"])
    gw_start = int(gw["ExecMainStartTimestampMonotonic"])
    assert int(before_gw["ExecMainStartTimestampMonotonic"]) < x_start < gw_start
    log = journal_since(installed, mark)
    print(run(installed, f"journalctl --no-pager -o short-monotonic -u {DISPLAY} -u {GATEWAY} "
                         f"--after-cursor={shlex.quote(mark)} | grep -v ' IBC: '"))
    # The Gateway did not outlive its display: the JVM exited with its X connection.
    assert "IBC returned exit status 1" in log, log


def test_stop_logs_out_and_is_not_a_kill(installed: str) -> None:
    """systemctl stop: TERM goes to ibcstart.sh, which passes it to the JVM; clean logout."""
    assert wait_healthy(installed, 120).get("healthy")
    unit = show(installed, GATEWAY, "MainPID", "KillMode", "TimeoutStopUSec")
    assert unit["KillMode"] == "mixed" and unit["TimeoutStopUSec"] == "1min 30s"
    # The main process is IBC's script, and the JVM is its child: systemd signals only the
    # script (KillMode=mixed), so a TERM the JVM receives came through IBC.
    main = run(installed, f"tr '\\0' ' ' < /proc/{unit['MainPID']}/cmdline")
    assert "ibcstart.sh" in main
    java = run(installed, f"pgrep -P {unit['MainPID']} -f 'java.*IbcGateway'").split()
    assert len(java) == 1, java
    events = [json.loads(line) for line in run(installed, f"cat {LOGINS}").splitlines()]
    session = [e for e in events if e["event"] == "login"][-1]
    # The session is held by the JVM's API engine (its child).
    assert str(session["pid"]) in run(installed, f"pgrep -P {java[0]}").split()
    mark = cursor(installed)
    run(installed, f"systemctl stop {GATEWAY}")
    after = show(installed, GATEWAY, "ActiveState", "Result", "ExecMainStatus")
    assert after["ActiveState"] == "inactive" and after["Result"] == "success", after
    last = json.loads(run(installed, f"tail -n 1 {LOGINS}"))
    assert last["event"] == "logout" and last["reason"] == "shutdown", last
    assert last["instance"] == session["instance"]
    log = journal_since(installed, mark)
    assert "GW-SIM: JVM shutting down: the API closes and the session logs out" in log, log
    assert "IBC returned exit status 143" in log, log
    systemd = run(installed, f"journalctl --no-pager -o cat -u {GATEWAY} _PID=1 "
                             f"--after-cursor={shlex.quote(mark)}")
    assert f"{GATEWAY}: Deactivated successfully." in systemd, systemd
    assert "SIGKILL" not in systemd and "timed out" not in systemd, systemd
    run(installed, f"systemctl start {GATEWAY}")
    assert wait_healthy(installed, 120).get("healthy")


def test_heap_follows_the_setting(installed: str, install: Callable[[Deployment], None]) -> None:
    """IBKR_JAVA_HEAP_MB reaches the JVM's -Xmx; other vmoptions lines stay as installed."""
    assert wait_healthy(installed, 120).get("healthy")
    assert " -Xmx1024m " in java_cmdline(installed)
    lines = run(installed, f"cat {VMOPTIONS}").splitlines()
    install(deployment(extra="IBKR_JAVA_HEAP_MB=1280\n"))
    assert " -Xmx1280m " in java_cmdline(installed)
    changed = run(installed, f"cat {VMOPTIONS}").splitlines()
    assert changed == ["-Xmx1280m" if line.startswith("-Xmx") else line for line in lines]
    assert run(installed, f"stat -c '%a %U' {VMOPTIONS}") == "644 trader\n"
    install(deployment())
    assert " -Xmx1024m " in java_cmdline(installed)

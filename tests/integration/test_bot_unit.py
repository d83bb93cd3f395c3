"""`invoke install --bot-unit`: a real ib_async bot under systemd starts only once the Gateway
answers, pulling the Gateway up itself, on a sandbox guest."""

from __future__ import annotations

import dataclasses
import io
import json
import shlex
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ib_async
import pytest
from migrate_support import deployment, options, root, run, say, set_sim_property
from test_install import statuses

from ibkr_ops import sandbox
from ibkr_ops.remote.install import InstallOptions, install_host
from ibkr_ops.settings import Deployment

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
BOT = "trading-bot.service"
BOT_DIR = "/opt/trading-bot"
DROPIN = f"/etc/systemd/system/{BOT}.d/ibkr-gateway.conf"
# ib_async and what it imports (eventkit imports numpy), with their metadata: both read
# their own version through importlib.metadata.
PACKAGES = ("ib_async", "eventkit", "nest_asyncio.py", "numpy", "numpy.libs")
DIST_INFO = ("ib_async-", "aeventkit-", "nest_asyncio-", "numpy-")
HEALTH = "/usr/local/bin/ibkr-health-check"


def bot_options(wait_s: int = 120) -> InstallOptions:
    return dataclasses.replace(options(), bot_units=(BOT,), bot_wait_s=wait_s)


def site_packages_tar() -> bytes:
    """ib_async and its dependencies from this test's environment, as one tar.gz (the guest
    has no internet and no pip index)."""
    site = Path(ib_async.__file__).resolve().parents[1]
    names = [*PACKAGES, *(p.name for p in site.iterdir() if p.name.startswith(DIST_INFO)
                          and p.name.endswith(".dist-info"))]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name in names:
            tar.add(site / name, arcname=name,
                    filter=lambda info: None if "__pycache__" in info.name else info)
    return buffer.getvalue()


def sh(name: str, command: str, timeout: int = 120) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a root command on the guest."""
    with root(name) as host:
        result = host.root(command, warn=True, timeout=timeout)
    return int(result.exited), str(result.stdout), str(result.stderr)


def show(name: str, unit: str, prop: str) -> str:
    return run(name, f"systemctl show -p {prop} --value {unit}").strip()


def journal(name: str, unit: str, cursor: str) -> list[dict[str, str]]:
    """The unit's journal entries after ``cursor``, as journalctl's JSON objects."""
    out = run(name, f"journalctl --no-pager -o json -u {unit} --after-cursor={shlex.quote(cursor)}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def cursor(name: str) -> str:
    """Where the guest's journal is now: later entries are the test's."""
    return str(json.loads(run(name, "journalctl -n 1 -o json --no-pager"))["__CURSOR"])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def d() -> Deployment:
    return deployment()


@pytest.fixture(scope="module")
def guest(sandbox_guests: Callable[[int], list[sandbox.Guest]],
          d: Deployment) -> Iterator[sandbox.Guest]:
    """A shared guest installed with `--bot-unit trading-bot` before the bot exists, then the
    README's bot (its unit and script from deploy/examples) in a venv with ib_async."""
    found = sandbox_guests(1)[0]
    name = found.name
    report = install_host(name, d, bot_options(), say)
    assert report.error is None, report.error
    assert statuses(report)[DROPIN] == "changed"
    guest_python = run(name, "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    if guest_python.strip() != f"{sys.version_info[0]}.{sys.version_info[1]}":
        pytest.skip(f"the guest's python {guest_python.strip()} cannot load this "
                    f"environment's numpy (built for {sys.version_info[0]}.{sys.version_info[1]})")
    with root(name) as host:
        staged = host.upload(site_packages_tar(), "site.tar.gz")
        script = host.upload((EXAMPLES / "trading_bot.py").read_bytes(), "trading_bot.py")
        unit = host.upload((EXAMPLES / BOT).read_bytes(), BOT)
        host.root(f"set -e; id bot >/dev/null 2>&1 || useradd --system bot; "
                  f"python3 -m venv --without-pip {BOT_DIR}/venv; "
                  f"site=$({BOT_DIR}/venv/bin/python -c "
                  "'import sysconfig; print(sysconfig.get_path(\"purelib\"))'); "
                  f"tar -xzf {staged} -C \"$site\"; "
                  f"install -m 0644 {script} {BOT_DIR}/trading_bot.py; "
                  f"install -m 0644 {unit} /etc/systemd/system/{BOT}; systemctl daemon-reload",
                  what="installing the example bot", timeout=300)
        host.cleanup()
    # The health-check timer heals a stopped Gateway: these tests decide when it starts.
    run(name, "systemctl stop ibkr-health-check.timer")
    try:
        yield found
    finally:
        set_sim_property(name, "login_delay", None)
        run(name, f"systemctl disable --now {BOT}; rm -rf /etc/systemd/system/{BOT} "
                  f"/etc/systemd/system/{BOT}.d {BOT_DIR}; systemctl daemon-reload; "
                  "systemctl reset-failed; systemctl start ibkr-gateway.service "
                  "ibkr-health-check.timer")
        assert sh(name, f"{HEALTH} --wait 120")[0] == 0


def test_bot_start_pulls_the_gateway_up_and_waits_for_its_api(guest: sandbox.Guest) -> None:
    name = guest.name
    run(name, "systemctl stop ibkr-gateway.service")
    set_sim_property(name, "login_delay", "8")  # a login slow enough to be waited for
    assert show(name, "ibkr-gateway.service", "ActiveState") == "inactive"
    mark = cursor(name)
    code, _, err = sh(name, f"systemctl start {BOT}", timeout=240)
    assert code == 0, err
    wait_until(lambda: any("connected; accounts:" in e.get("MESSAGE", "")
                           for e in journal(name, BOT, mark)), 60, "the bot to connect")
    assert show(name, "ibkr-gateway.service", "ActiveState") == "active"  # pulled up by Wants=
    bot = journal(name, BOT, mark)
    messages = [e.get("MESSAGE", "") for e in bot]
    # The ExecStartPre said what it waited for, then that the Gateway was ready.
    assert any(m.startswith("waiting for the Gateway (") for m in messages), messages
    assert any(m.startswith("ready after ") for m in messages), messages
    # First attempt: one connect, no restart, no error from ib_async or systemd.
    connects = [m for m in messages if m.startswith("connected; accounts: ")]
    assert len(connects) == 1 and "DU" in connects[0], messages
    assert show(name, BOT, "NRestarts") == "0"
    assert not any("Traceback" in m or "Main process exited" in m for m in messages), messages
    # The bot's main process started after the Gateway's API began to listen.
    listening = [int(e["__MONOTONIC_TIMESTAMP"]) for e in journal(name, "ibkr-gateway.service",
                                                                   mark)
                 if "API listening on" in e.get("MESSAGE", "")]
    assert len(listening) == 1, "one Gateway start, one API"
    started = int(show(name, BOT, "ExecMainStartTimestampMonotonic"))
    assert started > listening[0]
    assert show(name, BOT, "ActiveState") == "active"


def test_wait_gives_up_with_one_line_when_the_gateway_stays_down(guest: sandbox.Guest) -> None:
    name = guest.name
    run(name, f"systemctl stop {BOT} ibkr-gateway.service")
    code, out, err = sh(name, f"runuser -u bot -- {HEALTH} --wait 5")
    assert code == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("ibkr-health-check: still not healthy after 5 s, gave up: ")
    for layer in ("service: ibkr-gateway.service inactive", "port: 127.0.0.1:4002"):
        assert layer in last, last
    assert show(name, "ibkr-gateway.service", "ActiveState") == "inactive"


def test_wait_as_a_bot_user_without_systemd_bus_still_judges_the_api(
        guest: sandbox.Guest) -> None:
    name = guest.name
    set_sim_property(name, "login_delay", None)
    run(name, "systemctl start ibkr-gateway.service")
    # A bot unit sandboxed away from D-Bus: systemctl cannot answer a non-root caller.
    code, out, err = sh(name, "runuser -u bot -- env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nowhere "
                              f"{HEALTH} --wait 60 --json")
    assert code == 0, err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    service = checks["service"]
    assert service["status"] == "skip", service
    assert "Failed to connect to bus" in service["detail"]
    assert "not reachable as uid" in service["detail"]
    assert checks["api"]["status"] == "ok"


def test_second_install_changes_nothing_and_dry_run_shows_the_dropin(
        guest: sandbox.Guest, d: Deployment) -> None:
    name = guest.name
    run(name, "systemctl start ibkr-gateway.service")
    report = install_host(name, d, bot_options(), say)
    assert report.error is None, report.error
    assert set(statuses(report).values()) == {"unchanged"}, report.items
    dry = install_host(name, d, dataclasses.replace(bot_options(90), dry_run=True), say)
    assert statuses(dry)[DROPIN] == "would change"
    diff = "".join(dry.diff)
    assert f"+ExecStartPre={HEALTH} --wait 90" in diff and "+TimeoutStartSec=150" in diff


def test_bot_under_systemd_trades_on_the_paper_account(guest: sandbox.Guest,
                                                       d: Deployment) -> None:
    """The bot unit, its program swapped for one that trades (a drop-in of the test's own,
    sorted after the install's): with orders allowed it starts once the Gateway answers,
    qualifies AAPL, reads a day of bars, buys 5 with a limit order that fills, and sees the
    fill in its position and cash — through the install's drop-in, as the bot's own user."""
    name = guest.name
    trading = dataclasses.replace(d, read_only_api=False)
    report = install_host(name, trading, bot_options(), say)
    assert report.error is None, report.error
    trade_dropin = f"/etc/systemd/system/{BOT}.d/zz-trade.conf"
    with root(name) as host:
        client = host.upload((Path(__file__).with_name("bot_client.py")).read_bytes(),
                             "bot_client.py")
        conf = host.upload(
            b"[Service]\nType=oneshot\nRestart=no\nExecStart=\nExecStart="
            + f"{BOT_DIR}/venv/bin/python {BOT_DIR}/bot_client.py 4002 7 trade\n".encode(),
            "zz-trade.conf")
        host.root(f"install -m 0644 {client} {BOT_DIR}/bot_client.py; "
                  f"install -m 0644 {conf} {trade_dropin}; systemctl daemon-reload",
                  what="installing the trading bot's program")
        host.cleanup()
    try:
        mark = cursor(name)
        code, _, err = sh(name, f"systemctl start {BOT}", timeout=300)
        assert code == 0, err
        lines = [e.get("MESSAGE", "") for e in journal(name, BOT, mark)]
        results = [json.loads(m) for m in lines if m.startswith("{")]
        assert results, lines
        result = results[-1]
        assert result["library"] == "ib_async" and result["con_id"] == 265598
        assert result["status"] == "Filled" and result["filled"] == 5, result
        assert result["position_after"] == float(result["position_before"] or 0) + 5
        spent = float(result["cash_before"]) - float(result["cash_after"])
        assert abs(spent - (5 * float(result["fill_price"]) + float(result["commission"]))) < 0.01
        assert show(name, BOT, "Result") == "success"
    finally:
        run(name, f"rm -f {trade_dropin} {BOT_DIR}/bot_client.py; systemctl daemon-reload")
        restored = install_host(name, d, bot_options(), say)
        assert restored.error is None, restored.error

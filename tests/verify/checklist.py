"""The go-live checks as functions of (testinfra host, expectations), so that the reboot check
can run items 1-5 again after the host is back, with the same assertions and messages.

Everything reads the host through testinfra; nothing here changes the host.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from testinfra.host import Host

from ibkr_ops.settings import Deployment

HOSTSIDE = Path(__file__).with_name("hostside")
HEALTH = "/usr/local/bin/ibkr-health-check"
NOTIFY = "/usr/local/bin/ibkr-notify"
GATEWAY = "ibkr-gateway.service"
DISPLAY = "xvfb.service"
RESTART_TIMER = "ibkr-gateway-restart.timer"
HEALTH_TIMER = "ibkr-health-check.timer"
LAYERS = ("service", "display", "process", "port", "api", "upstream", "memory")
ACCOUNT_PREFIX = {"paper": "DU", "live": "U"}
T = TypeVar("T")


@dataclass(frozen=True)
class Expect:
    """What the host must look like, from the settings the install used."""

    trading_mode: str
    api_host: str
    api_port: int
    service_user: str
    restart_time: str
    timezone: str
    health_client_id: int
    webhook: bool
    cold_restart_timeout_s: float

    @classmethod
    def from_settings(cls, env: dict[str, str], ops: dict[str, Any], webhook: bool) -> Expect:
        """From credentials.env keys (defaults as `settings.Deployment`) and ops.json."""

        def key(name: str, default: object) -> str:
            return env.get(name) or str(default)

        mode = key("IBKR_TRADING_MODE", "paper").lower()
        return cls(
            trading_mode=mode,
            api_host=key("IBKR_API_HOST", Deployment.api_host),
            api_port=int(key("IBKR_API_PORT", 4002 if mode == "paper" else 4001)),
            service_user=key("IBKR_SERVICE_USER", Deployment.service_user),
            restart_time=key("IBKR_RESTART_TIME", Deployment.restart_time),
            timezone=key("IBKR_TIMEZONE", Deployment.timezone),
            health_client_id=int(key("IBKR_HEALTH_CLIENT_ID", Deployment.health_client_id)),
            webhook=webhook,
            cold_restart_timeout_s=float(ops.get("cold_restart_timeout_s", 600.0)),
        )


def run_hostside(host: Host, script: str) -> dict[str, Any]:
    """Run one of hostside/*.py with the host's python3 and return the JSON it prints.

    The source travels as an argument (it holds no secret); the script reads secrets itself.
    """
    source = (HOSTSIDE / script).read_text()
    result = host.run("python3 -c %s", source)
    if result.rc != 0:
        pytest.fail(f"{script} failed on the host (exit {result.rc}): {result.stderr.strip()[-300:]}")
    return dict(json.loads(result.stdout))


def poll(what: str, probe: Callable[[], T | None], timeout: float,
         say: Callable[[str], None], interval: float = 1.0) -> tuple[T, float]:
    """Call `probe` until it returns a value; (value, seconds waited). Fails after `timeout`."""
    started = time.monotonic()
    next_note = started + 10
    while True:
        value = probe()
        elapsed = time.monotonic() - started
        if value is not None:
            return value, elapsed
        if elapsed > timeout:
            pytest.fail(f"{what}: not within {timeout:g} s")
        if time.monotonic() >= next_note:
            say(f"waiting for {what}: {elapsed:.0f} s of at most {timeout:g} s")
            next_note += 10
        time.sleep(interval)


def quietly(host: Host, command: str, *args: str) -> Any:
    """`host.run`, but an SSH failure (host rebooting, sshd not up yet) is None, not an error."""
    try:
        return host.run(command, *args)
    except RuntimeError:  # testinfra's ssh backend: ssh itself exited 255
        return None


def health(host: Host) -> dict[str, Any] | None:
    """The host's own health check as JSON, or None when it cannot run or is not parseable."""
    result = quietly(host, f"{HEALTH} --json")
    if result is None or not result.stdout.strip():
        return None
    try:
        return dict(json.loads(result.stdout))
    except ValueError:
        return None


def healthy(host: Host) -> dict[str, Any] | None:
    """The health report when the host says healthy, else None (a probe for `poll`)."""
    report = health(host)
    return report if report and report.get("healthy") else None


def gateway_java_pids(host: Host) -> dict[int, str]:
    """PID → user of the Gateway's JVM (command line has both `java` and `ibgateway`)."""
    result = quietly(host, "ps -eo pid=,user:32=,args=")
    pids: dict[int, str] = {}
    for line in result.stdout.splitlines() if result is not None else []:
        pid, user, args = [*line.split(None, 2), "", ""][:3]
        if "java" in args and "ibgateway" in args and "ps -eo" not in args:
            pids[int(pid)] = user
    return pids


def unit_props(host: Host, unit: str, *names: str) -> dict[str, str]:
    """`systemctl show` properties of a unit as a dict."""
    out = host.check_output("systemctl show %s -p %s", unit, ",".join(names))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# --- the checklist, items 1-5 --------------------------------------------------------------


def gateway_starts(host: Host, expect: Expect) -> None:
    """1: both services active, each (and the Gateway's JVM) running as the service user."""
    for unit in (DISPLAY, GATEWAY):
        props = unit_props(host, unit, "ActiveState", "SubState", "User", "MainPID")
        assert props["ActiveState"] == "active", f"{unit} is {props['ActiveState']}"
        assert props["User"] == expect.service_user, \
            f"{unit} has User={props['User']!r}, expected {expect.service_user!r}"
        owner = host.check_output("ps -o user:32= -p %s", props["MainPID"]).strip()
        assert owner == expect.service_user, f"{unit}'s main process runs as {owner!r}"
    jvms = gateway_java_pids(host)
    assert jvms, "no Gateway JVM (a java process with ibgateway in its arguments) is running"
    wrong = {pid: user for pid, user in jvms.items() if user != expect.service_user}
    assert not wrong, f"Gateway JVMs not running as {expect.service_user}: {wrong}"


def api_port_listens(host: Host, expect: Expect) -> None:
    """2: the API port listens on the configured address, and on no other."""
    wanted = f"tcp://{expect.api_host}:{expect.api_port}"
    listening = host.socket.get_listening_sockets()
    on_port = sorted(s for s in listening
                     if s.startswith("tcp") and s.rsplit(":", 1)[-1] == str(expect.api_port))
    assert on_port, f"nothing listens on port {expect.api_port} (expected {wanted})"
    assert on_port == [wanted], f"port {expect.api_port} listens on {on_port}, expected only {wanted}"


def health_passes(host: Host, expect: Expect) -> dict[str, Any]:
    """3: ibkr-health-check exits 0 and every layer is ok; returns the report."""
    result = host.run(f"{HEALTH} --json")
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    layers = {c["name"]: (c["status"], c["detail"]) for c in report.get("checks", [])}
    bad = {name: layers.get(name, ("missing", "")) for name in LAYERS
           if layers.get(name, ("missing",))[0] != "ok"}
    assert result.rc == 0 and report.get("healthy"), f"health check exit {result.rc}: {bad or layers}"
    assert not bad, f"layers not ok: {bad}"
    prefix = ACCOUNT_PREFIX[expect.trading_mode]
    accounts = report.get("accounts") or []
    assert accounts and all(_account_matches(a, expect.trading_mode) for a in accounts), \
        f"accounts {accounts} are not {expect.trading_mode} accounts ({prefix}...)"
    return dict(report)


def _account_matches(account: str, mode: str) -> bool:
    return account.startswith("DU") if mode == "paper" else account.startswith("U")


def enabled_for_boot(host: Host, expect: Expect) -> None:
    """4: both services and both timers are enabled, and the timers are active."""
    not_enabled = [u for u in (DISPLAY, GATEWAY, RESTART_TIMER, HEALTH_TIMER)
                   if not host.service(u).is_enabled]
    assert not not_enabled, f"not enabled for boot: {not_enabled}"
    idle = [t for t in (RESTART_TIMER, HEALTH_TIMER) if not host.service(t).is_running]
    assert not idle, f"timers not active: {idle}"


def next_restart(host: Host) -> dt.datetime:
    """When the restart timer fires next, as the host's systemd computed it (UTC)."""
    out = host.check_output("TZ=UTC systemctl show -p NextElapseUSecRealtime --value %s",
                            RESTART_TIMER).strip()
    assert out and out != "n/a", f"{RESTART_TIMER} has no next elapse ({out!r}); is it active?"
    return dt.datetime.strptime(out, "%a %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC)


def timer_scheduled(host: Host, expect: Expect) -> dt.datetime:
    """5: the next restart is a weekday at the configured time in the configured zone."""
    when = next_restart(host).astimezone(ZoneInfo(expect.timezone))
    assert when.weekday() < 5, f"next restart {when:%a %Y-%m-%d %H:%M %Z} is not a weekday"
    assert f"{when:%H:%M}" == expect.restart_time, \
        f"next restart {when:%a %Y-%m-%d %H:%M %Z}, expected {expect.restart_time} {expect.timezone}"
    host_now = dt.datetime.fromtimestamp(int(host.check_output("date +%s")), dt.UTC)
    assert dt.timedelta(0) < when - host_now <= dt.timedelta(days=4), \
        f"next restart {when:%Y-%m-%d %H:%M %Z} is not within the next four days"
    return when


AFTER_REBOOT: tuple[Callable[[Host, Expect], object], ...] = (
    gateway_starts, api_port_listens, health_passes, enabled_for_boot, timer_scheduled)

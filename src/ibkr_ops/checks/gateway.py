"""Checklist items 1-5: the Gateway runs, listens where configured, is healthy, survives a
boot and restarts on schedule. Read-only: safe on a production host at any time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from ibkr_ops.checks import parse
from ibkr_ops.checks.expect import Expect
from ibkr_ops.checks.result import Failed, Passed, Result, check, require
from ibkr_ops.checks.runner import Runner, output, quietly
from ibkr_ops.host.health import LAYERS
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import gateways


def gateway_jvms(runner: Runner, layout: Layout = DEFAULT) -> dict[int, str]:
    """PID -> user of the layout's Gateway JVMs now (empty while the host does not answer)."""
    ran = quietly(runner, "ps -eo pid=,user:32=,args=")
    if ran is None:
        return {}
    return _own(runner, layout, parse.gateway_jvms(parse.processes(ran.stdout)))


def _own(runner: Runner, layout: Layout, jvms: dict[int, str]) -> dict[int, str]:
    """The JVMs of the layout's Gateway unit alone: beside other instances, a JVM counts for
    the instance whose unit runs it (a single-Gateway host's JVMs are all its own)."""
    if layout.instance is None or not jvms:
        return jvms
    ran = quietly(runner, "ps -eo pid=,unit:100=")
    mine = parse.unit_pids(ran.stdout if ran is not None else "", layout.gateway_unit)
    return {pid: user for pid, user in jvms.items() if pid in mine}


def health(runner: Runner, layout: Layout = DEFAULT) -> dict[str, Any] | None:
    """The host's own health check of the layout's Gateway as JSON, or None when it cannot
    run or says nothing."""
    ran = quietly(runner, gateways.tool_command(layout.health_check_tool, layout, "--json"))
    return parse.health_report(ran.stdout) if ran is not None else None


def healthy(runner: Runner, layout: Layout = DEFAULT) -> dict[str, Any] | None:
    """The health report when the host says healthy, else None (a probe for `poll`)."""
    report = health(runner, layout)
    return report if report and report.get("healthy") else None


@check(1)
def gateway_starts(runner: Runner, expect: Expect) -> Passed:
    """Both services active, each (and the Gateway's JVM) running as the service user."""
    units = (expect.layout.display_unit, expect.layout.gateway_unit)
    shown = parse.systemctl_show(output(
        runner, f"systemctl show -p ActiveState,User,MainPID {' '.join(units)}"))
    table = parse.processes(output(runner, "ps -eo pid=,user:32=,args="))
    for unit, props in zip(units, shown, strict=True):
        require(props.get("ActiveState") == "active", f"{unit} is {props.get('ActiveState')}")
        require(props.get("User") == expect.service_user,
                f"{unit} has User={props.get('User')!r}, expected {expect.service_user!r}")
        owner = table.get(int(props.get("MainPID") or 0), ("",))[0]
        require(owner == expect.service_user, f"{unit}'s main process runs as {owner!r}")
    jvms = _own(runner, expect.layout, parse.gateway_jvms(table))
    require(jvms, "no Gateway JVM (a java process with ibgateway in its arguments) is running")
    wrong = {pid: user for pid, user in jvms.items() if user != expect.service_user}
    require(not wrong, f"Gateway JVMs not running as {expect.service_user}: {wrong}")
    return Passed.of(f"{units[0]} and {units[1]} active, {len(jvms)} JVM, all as "
                     f"{expect.service_user}")


@check(2)
def api_port_listens(runner: Runner, expect: Expect) -> Passed:
    """The API port listens on the configured address, and on no other."""
    wanted = (expect.api_host, expect.api_port)
    on_port = sorted(s for s in parse.listening_tcp(output(runner, "ss -Hltn"))
                     if s[1] == expect.api_port)
    shown = [f"{host}:{port}" for host, port in on_port]
    require(on_port, f"nothing listens on port {expect.api_port} (expected "
                     f"{expect.api_host}:{expect.api_port})")
    require(on_port == [wanted], f"port {expect.api_port} listens on {shown}, expected only "
                                 f"{expect.api_host}:{expect.api_port}")
    return Passed.of(f"listening on {expect.api_host}:{expect.api_port} only")


@check(3)
def health_passes(runner: Runner, expect: Expect) -> Passed:
    """ibkr-health-check exits 0 and every layer is ok, with accounts of the right mode."""
    layout = expect.layout
    ran = runner.run(gateways.tool_command(layout.health_check_tool, layout, "--json"),
                     timeout=90)
    report = parse.health_report(ran.stdout) or {}
    layers = {c["name"]: (c["status"], c["detail"]) for c in report.get("checks", [])}
    bad = {name: layers.get(name, ("missing", "")) for name in LAYERS
           if layers.get(name, ("missing",))[0] != "ok"}
    require(ran.ok and report.get("healthy"),
            f"health check exit {ran.rc}: {(bad or layers) if report else ran.last_error()}")
    require(not bad, f"layers not ok: {bad}")
    accounts = report.get("accounts") or []
    require(accounts and all(expect.account_matches(a) for a in accounts),
            f"accounts {accounts} are not {expect.trading_mode} accounts "
            f"({expect.account_prefix}...)")
    return Passed.of(f"healthy, accounts {', '.join(accounts)}")


@check(4)
def enabled_for_boot(runner: Runner, expect: Expect) -> Passed:
    """Both services and both timers are enabled, and the timers are active."""
    layout = expect.layout
    timers = (layout.restart_timer, layout.health_timer)
    units = (layout.display_unit, layout.gateway_unit, *timers)
    shown = parse.systemctl_show(output(
        runner, f"systemctl show -p UnitFileState,ActiveState {' '.join(units)}"))
    states = dict(zip(units, shown, strict=True))
    not_enabled = [u for u in units if states[u].get("UnitFileState") != "enabled"]
    require(not not_enabled, f"not enabled for boot: {not_enabled}")
    idle = [t for t in timers if states[t].get("ActiveState") != "active"]
    require(not idle, f"timers not active: {idle}")
    return Passed.of(f"{len(units)} units enabled, both timers active")


def next_restart(runner: Runner, layout: Layout = DEFAULT) -> dt.datetime:
    """When the restart timer fires next, as the host's systemd computed it (UTC)."""
    timer = layout.restart_timer
    out = output(runner, f"TZ=UTC systemctl show -p NextElapseUSecRealtime --value {timer}")
    when = parse.next_elapse(out)
    if when is None:
        raise Failed(f"{timer} has no next elapse ({out.strip()!r}); is it active?")
    return when


@check(5)
def timer_scheduled(runner: Runner, expect: Expect) -> Passed:
    """The next restart is a weekday at the configured time in the configured zone."""
    when = next_restart(runner, expect.layout).astimezone(ZoneInfo(expect.timezone))
    shown = f"{when:%a %Y-%m-%d %H:%M %Z}"
    require(when.weekday() < 5, f"next restart {shown} is not a weekday")
    require(f"{when:%H:%M}" == expect.restart_time,
            f"next restart {shown}, expected {expect.restart_time} {expect.timezone}")
    host_now = dt.datetime.fromtimestamp(int(output(runner, "date +%s")), dt.UTC)
    require(dt.timedelta(0) < when - host_now <= dt.timedelta(days=4),
            f"next restart {when:%Y-%m-%d %H:%M %Z} is not within the next four days")
    return Passed.of(f"next restart {shown}", next_restart=shown)


AFTER_REBOOT: tuple[Callable[[Runner, Expect], Result], ...] = (
    gateway_starts, api_port_listens, health_passes, enabled_for_boot, timer_scheduled)

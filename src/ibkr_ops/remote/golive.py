"""`invoke go-live`: switch one host (or one Gateway instance of it) from paper to live, and
back with ``--rollback``; or add a live instance beside the host's paper one.

Nothing changes until the host says a restart may go ahead and the running paper deployment
is healthy. The paper settings are kept on the host (0600) first, so a live login that fails
or never becomes healthy is rolled back automatically, by the install code path, to the
exact paper deployment that ran before. A live instance added beside others restarts
nothing that runs; if it does not become healthy it is stopped and disabled again, and the
other Gateways are never touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ibkr_ops import checks
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.instances import Instance
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import switch
from ibkr_ops.remote.install import (
    InstallOptions,
    Progress,
    install_files,
    install_instances,
    notify,
)
from ibkr_ops.remote.primitives import Host
from ibkr_ops.settings import Deployment

PAPER_CHECK_S = 30.0  # the running paper Gateway must be healthy within this, or no go


def paper_backup(layout: Layout = DEFAULT) -> str:
    """Where go-live keeps the paper settings of the Gateway it switches."""
    return f"{layout.backup_dir}/paper"


@dataclass(frozen=True)
class GoLiveOptions:
    """The install options (wait, host-key trust, notifications) and whether to --force."""

    install: InstallOptions = field(default_factory=InstallOptions)
    force: bool = False


@dataclass
class GoLiveReport(switch.SwitchReport):
    """What was done on the host and what the bot must change."""

    bot: list[str] = field(default_factory=list)


def require_live(d: Deployment, source: str) -> None:
    """A live file must say live itself: no mode option can turn a paper file into one."""
    if not d.is_live:
        raise UsageError(f"{source} says IBKR_TRADING_MODE={d.trading_mode}; go-live needs a "
                         "file with IBKR_TRADING_MODE=live and the live username and password")


def bot_changes(before: Deployment, after: Deployment) -> list[str]:
    """The port and order permission a bot meets after the switch."""
    orders = "no: orders are allowed" if not after.read_only_api else "yes: orders are refused"
    if after.is_live and not after.read_only_api:
        orders += " (real money)"
    port = (f"port {before.api_port} -> {after.api_port}" if before.api_port != after.api_port
            else f"port {after.api_port} (unchanged)")
    return [f"bot: {port}, {after.trading_mode} account", f"bot: read-only API {orders}"]


def target(host: Host, instance: str | None) -> tuple[Layout, list[Layout]]:
    """The Gateway go-live acts on (the instance named, or the host's single Gateway) and
    every Gateway the host has; a host the request does not fit is a UsageError."""
    found = checks.installed_layouts(checks.FabricRunner(host))
    layout = Layout(instance)
    if layout in found:
        return layout, found
    if not found:
        raise OpsError(f"{host.name} has no Gateway installed; is this an ibkr-ops host "
                       "(`invoke install`)?")
    named = ", ".join(each.instance for each in found if each.instance)
    if instance is None:
        raise UsageError(f"{host.name} runs Gateway instances ({named}): give --instance NAME, "
                         "the instance to switch to live or a new one to add beside them")
    if DEFAULT in found:
        raise UsageError(f"{host.name} runs a single Gateway, not instances: go-live switches it "
                         "without --instance; `invoke install` with a file per Gateway turns it "
                         "into instances first")
    return layout, found


def _running(host: Host, layout: Layout) -> Deployment:
    """The deployment the layout's Gateway runs; a host without the single Gateway's settings
    is told what it has instead (instances, or nothing)."""
    try:
        return switch.read_deployment(host, layout.credentials)
    except OpsError:
        if layout.instance is None:
            target(host, None)
        raise


def go_live(host: Host, live: Instance, options: GoLiveOptions,
            progress: Progress) -> GoLiveReport:
    """Paper -> live over the caller's connection (every step, the install included, uses
    it): the host's single Gateway or the instance ``live`` names switches, and on any failure
    after the backup goes back to paper (OpsError); an instance the host does not have yet is
    added beside the others."""
    require_live(live.deployment, "the live credentials file")
    layout, found = target(host, live.name) if live.name else (DEFAULT, [])
    if live.name and layout not in found:
        return _add_beside(host, live, found, options, progress)
    spec, where = host.name, _where(host, layout)
    paper = _running(host, layout)
    if paper.is_live and live.name and not switch.gateway_active(host, layout):
        # A live instance that go-live's rollback (or a failed start) stopped: start it again.
        return _add_beside(host, live, [each for each in found if each != layout], options,
                           progress)
    if paper.is_live:
        raise OpsError(f"{where} is already live; `invoke go-live --host {spec}"
                       f"{layout.instance_args} --rollback` returns it to paper, `invoke install` "
                       "changes live settings")
    report = GoLiveReport(spec)
    progress("pre-restart check (no switch inside the trading session unless --force)")
    report.steps.append("pre-restart check: " + switch.restart_allowed(
        host, force=options.force, why="go-live", layout=layout))
    progress("checking the running paper deployment")
    report.steps.append("paper deployment: " + switch.ready(host, PAPER_CHECK_S, progress,
                                                            layout))
    report.steps.append(f"paper settings kept in {switch.backup(host, 'paper', layout)} (0600)")
    try:
        report.health = _switch_to_live(host, live, options, progress, restart=True)
    except OpsError as exc:
        _roll_back_after(host, exc, options, progress, layout)
    return _conclude(host, report, paper, live.deployment, "info",
                     f"LIVE: {where} now trades live ({report.health})", layout)


def _where(host: Host, layout: Layout) -> str:
    return host.name if layout.instance is None else f"{host.name} instance {layout.instance}"


def _switch_to_live(host: Host, live: Instance, options: GoLiveOptions, progress: Progress,
                    *, restart: bool) -> str:
    """Put the live files in place, then one cold start: a new login, second factor and all."""
    install_files(host, [live], dataclasses.replace(options.install, allow_live_switch=True),
                  progress)
    wait, layout = options.install.wait_s, live.layout
    notify(host, "warning", f"LIVE: login starting on {_where(host, layout)}: approve it on "
                            f"IBKR Mobile now (waiting up to {wait:.0f} s)", layout)
    progress(f"{'cold restart' if restart else 'start'}: a new live login; approve it on "
             "IBKR Mobile")
    switch.start_gateway(host, restart=restart, layout=layout)
    return switch.ready(host, wait, progress, layout)


def _add_beside(host: Host, live: Instance, found: list[Layout], options: GoLiveOptions,
                progress: Progress) -> GoLiveReport:
    """A live instance beside the host's others: nothing that runs restarts; one that does not
    become healthy is stopped and disabled again (its files kept for the next try)."""
    layout, spec = live.layout, host.name
    others = ", ".join(each.instance or "" for each in found) or "no other Gateway"
    report = GoLiveReport(spec, steps=[f"adding live instance {live.name} beside {others} "
                                       "(nothing running is restarted)"])
    try:
        report.health = _switch_to_live(host, live, options, progress, restart=False)
    except OpsError as exc:
        progress(f"the live instance failed ({exc}); stopping it")
        switch.stop_gateway(host, layout)
        notify(host, "error", f"go-live failed on {_where(host, layout)}: {exc}; the instance "
                              f"is stopped and disabled, {others} untouched", layout)
        raise OpsError(f"live instance {live.name} failed: {exc}; it is stopped and disabled "
                       f"(its files kept); {others} untouched") from None
    return _conclude(host, report, None, live.deployment, "info",
                     f"LIVE: {_where(host, layout)} now trades live beside {others} "
                     f"({report.health})", layout)


def _roll_back_after(host: Host, cause: OpsError, options: GoLiveOptions,
                     progress: Progress, layout: Layout) -> None:
    """The live switch failed: back to the saved paper deployment, tell everyone, fail."""
    progress(f"live switch failed ({cause}); rolling back to paper")
    where = _where(host, layout)
    try:
        health = _restore_paper(host, options, progress, layout)
    except OpsError as again:
        notify(host, "error", f"LIVE switch failed on {where} ({cause}) and the rollback "
                              f"to paper failed too ({again})", layout)
        raise OpsError(f"live switch failed: {cause}; the rollback to paper failed too: "
                       f"{again}; the paper settings are in {paper_backup(layout)}") from None
    notify(host, "error", f"go-live failed on {where}: {cause}; back on paper ({health})", layout)
    raise OpsError(f"live switch failed: {cause}; rolled back to paper, which is healthy")


def _restore_paper(host: Host, options: GoLiveOptions, progress: Progress,
                   layout: Layout) -> str:
    """Install the saved paper deployment (the install path restarts what changed)."""
    backup = f"{paper_backup(layout)}/credentials.env"
    paper = switch.read_deployment(host, backup,
                                   missing="go-live keeps it there; without it, return to paper "
                                           "with `invoke install --credentials PAPER_FILE`")
    again = Instance(backup, paper, layout.instance, restart_set=True)
    report = install_instances(host, [again], dataclasses.replace(options.install, notify=False),
                               progress)
    if report.error:
        raise OpsError(report.error)
    return report.health


def rollback(host: Host, options: GoLiveOptions, progress: Progress,
             instance: str | None = None) -> GoLiveReport:
    """`go-live --rollback` over the caller's connection: the host's Gateway (or the instance
    named) from live back to the paper deployment go-live saved; a live instance go-live
    added beside the others is stopped and disabled instead."""
    layout = target(host, instance)[0] if instance else DEFAULT
    spec, where = host.name, _where(host, layout)
    live = _running(host, layout)
    if not live.is_live:
        raise OpsError(f"{where} is not live (it runs {live.trading_mode}); nothing to roll back")
    added = layout.instance is not None and host.read_file(
        f"{paper_backup(layout)}/credentials.env") is None
    if added:
        progress(f"{where} was added live (no paper settings to return to): stopping it")
        switch.stop_gateway(host, layout)
        report = GoLiveReport(spec, steps=[f"stopped and disabled {', '.join(switch.stack_units(layout))}"
                                           " (files kept)"], health="stopped")
        notify(host, "warning", f"ibkr-ops: {where} is stopped (rollback of go-live)", layout)
        return report
    if switch.gateway_active(host, layout):
        report = GoLiveReport(spec, steps=["pre-restart check: " + switch.restart_allowed(
            host, force=options.force, why="go-live rollback", layout=layout)])
    else:
        report = GoLiveReport(spec, steps=["the live Gateway is not running"])
    progress(f"restoring the paper settings from {paper_backup(layout)}")
    report.health = _restore_paper(host, options, progress, layout)
    return _conclude(host, report, live, switch.read_deployment(host, layout.credentials),
                     "warning", f"ibkr-ops: {where} is back on paper (rollback from live)", layout)


def _conclude(host: Host, report: GoLiveReport, before: Deployment | None, after: Deployment,
              level: str, headline: str, layout: Layout) -> GoLiveReport:
    """Record the new state, tell the bot's owner what changed, and notify from the host."""
    report.steps.append(f"{after.trading_mode}: {report.health}")
    report.bot = bot_changes(before or after, after)
    notify(host, level, f"{headline}; {'; '.join(report.bot)}", layout)
    return report

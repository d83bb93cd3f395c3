"""`invoke migrate`: move a running deployment to another host, then switch.

The source's settings travel host to host through the operator's memory only. The target is
installed by the install code path with exactly those settings, and the source is touched
(stopped) only once the target is healthy. In live mode two Gateways must never hold the
account at once, so the order becomes: install the target without starting it, stop the
source, start the target, and restart the source if the target does not become healthy.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.instances import Instance
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import gateways, switch
from ibkr_ops.remote.hosts import resolve
from ibkr_ops.remote.install import (
    HostReport,
    InstallOptions,
    Progress,
    desired_files,
    gather,
    install_instances,
    notify,
)
from ibkr_ops.remote.plan import sha256
from ibkr_ops.remote.primitives import Host
from ibkr_ops.settings import Deployment, describe

ProgressFor = Callable[[str], Progress]


@dataclass(frozen=True)
class MigrateOptions:
    """How to migrate: the install options for the target, and whether to stop the source."""

    install: InstallOptions = field(default_factory=InstallOptions)
    stop_source: bool = False
    dry_run: bool = False
    # The source's Gateway instance to move (it keeps its name on the target); None: the
    # source's single Gateway, or its one instance.
    instance: str | None = None


@dataclass
class MigrateReport:
    """What happened (or would happen) on each host, and what the bot must change."""

    source: str
    target: str
    settings: dict[str, str] = field(default_factory=dict)  # secrets masked
    source_steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target_report: HostReport | None = None
    bot: list[str] = field(default_factory=list)


def live_order(source: str, target: str) -> list[str]:
    """The live guard's steps, said before any of them is taken."""
    return ["live mode: two Gateways must never be logged in to one live account, so:",
            f"  1. install on {target} without starting its Gateway",
            f"  2. stop and disable the Gateway on {source} (it logs out)",
            f"  3. start the Gateway on {target} and wait until it is healthy",
            f"  4. if it is not healthy in time: stop it again and restart {source}"]


def bot_changes(d: Deployment, source: Host, target: Host) -> list[str]:
    """What a trading bot must change to follow the move (addresses as connected to)."""
    address, target_name = target.address, target.name
    if d.api_host in ("127.0.0.1", "::1"):
        where = (f"the API listens on {d.api_host}:{d.api_port} on {target_name} ({address}): "
                 f"run the bot there, or reach it through an SSH tunnel to {address}")
    else:
        where = f"connect to {address}:{d.api_port} instead of {source.address}"
    return [f"bot: {where}", f"bot: port {d.api_port} ({d.trading_mode}), read-only API "
            f"{'yes' if d.read_only_api else 'no'}: unchanged"]


def drift(host: Host, d: Deployment, layout: Layout = DEFAULT) -> list[str]:
    """Settings files on the source that differ from what its settings render (hand edits)."""
    files = desired_files(d, layout)
    sums = gather(host, d, files, layout=layout).checksums
    return [f"{f.path} on {host.name} differs from what its settings render; the target gets "
            "the rendered file (hand edits are not carried over)"
            for f in files if f.path.startswith(layout.config_dir + "/") and f.path in sums
            and sums[f.path] != sha256(f.content)]


def source_layout(src: Host, instance: str | None) -> Layout:
    """The source's Gateway to move: the instance named, or its only Gateway (UsageError when
    it has several and none is named)."""
    found = gateways.on_host(src, instance)
    if len(found) > 1:
        raise UsageError(f"{src.name} runs several Gateways ({gateways.names(found)}): give "
                         "--instance NAME, the one to move")
    return found[0]


def refuse_same_host(source: str, target: str, ssh_configs: Sequence[str] = ()) -> None:
    """A migration needs two hosts: said before either is contacted."""
    if resolve(source, ssh_configs).key_name == resolve(target, ssh_configs).key_name:
        raise UsageError(f"--source and --target are the same host ({source})")


def migrate(src: Host, tgt: Host, options: MigrateOptions,
            progress_for: ProgressFor) -> MigrateReport:
    """Migrate over the caller's two connections (every step, the target's install included,
    uses them); raises OpsError saying what state both hosts were left in."""
    source, target = src.name, tgt.name
    layout = source_layout(src, options.instance)
    progress_for(source)(f"reading the deployment from {layout.credentials} (in memory)")
    d = switch.read_deployment(src, layout.credentials)
    if d.is_live and not options.stop_source:
        raise UsageError(f"{source} is live: two Gateways must never log in to one live "
                         "account, so the source must stop; re-run with --stop-source")
    moving = Instance(f"{source}:{layout.credentials}", d, layout.instance, restart_set=True)
    report = MigrateReport(source, target, settings=describe(d),
                           warnings=drift(src, d, layout))
    if d.is_live:
        report.source_steps += live_order(source, target)
    if options.dry_run:
        return _dry_run(tgt, report, moving, options, progress_for)
    for line in report.source_steps:
        progress_for(source)(line)
    report.source_steps.append(
        f"settings backed up to {switch.backup(src, switch.backup_name('migrate'), layout)} "
        "(0600)")
    switched = _live_switch if d.is_live else _paper_switch
    switched(src, tgt, moving, options, report, progress_for)
    report.bot = bot_changes(d, src, tgt)
    if options.install.notify:
        notify(tgt, "info", f"ibkr-ops: migrated here from {source}; serving "
                            f"{d.trading_mode} on API port {d.api_port}", layout)
    return report


def _dry_run(tgt: Host, report: MigrateReport, moving: Instance, options: MigrateOptions,
             progress_for: ProgressFor) -> MigrateReport:
    layout = moving.layout
    report.source_steps[:0] = [f"would read {layout.credentials} (settings below, secrets "
                               "masked)", f"would back up {layout.credentials} and "
                               f"{layout.config_ini} to {layout.backup_dir}/migrate-<time>/ "
                               "(0600)"]
    if options.stop_source:
        report.source_steps.append(f"would stop and disable "
                                   f"{', '.join(switch.stack_units(layout))} (files kept)")
    dry = dataclasses.replace(options.install, dry_run=True)
    report.target_report = install_instances(tgt, [moving], dry, progress_for(report.target))
    return report


def _paper_switch(src: Host, tgt: Host, moving: Instance, options: MigrateOptions,
                  report: MigrateReport, progress_for: ProgressFor) -> None:
    """Paper: both may run at once, so the target is installed and checked first."""
    say, layout = progress_for(tgt.name), moving.layout
    report.target_report = install_instances(tgt, [moving], options.install, say)
    try:
        if report.target_report.error:
            raise OpsError(report.target_report.error)
        report.target_report.health = switch.ready(tgt, options.install.wait_s, say, layout)
    except OpsError as exc:
        with contextlib.suppress(OpsError):  # a target that never got its units has none to stop
            switch.stop_gateway(tgt, layout)
        raise OpsError(f"{tgt.name} failed: {exc}; {src.name} is untouched and still running; "
                       f"the Gateway on {tgt.name} is stopped and disabled") from None
    if options.stop_source:
        progress_for(src.name)("target healthy: stopping and disabling the Gateway here")
        switch.stop_gateway(src, layout)
        report.source_steps.append(f"stopped and disabled {', '.join(switch.stack_units(layout))}")
    else:
        report.source_steps.append("still running (give --stop-source to stop it)")


def _live_switch(src: Host, tgt: Host, moving: Instance, options: MigrateOptions,
                 report: MigrateReport, progress_for: ProgressFor) -> None:
    """Live: never two logins at once; fall back to the source if the target fails."""
    say_source, say_target = progress_for(src.name), progress_for(tgt.name)
    layout = moving.layout
    if switch.gateway_active(tgt, layout):
        say_target("a Gateway already runs here: stopping it before anything else")
        switch.stop_gateway(tgt, layout)
    quiet = dataclasses.replace(options.install, start_gateway=False, allow_live_switch=True)
    report.target_report = install_instances(tgt, [moving], quiet, say_target)
    if report.target_report.error:
        raise OpsError(f"{tgt.name} failed: {report.target_report.error}; {src.name} is "
                       f"untouched and still running; nothing was started on {tgt.name}")
    say_source("stopping and disabling the Gateway (it logs out of the live account)")
    switch.stop_gateway(src, layout)
    report.source_steps.append(f"stopped and disabled {', '.join(switch.stack_units(layout))}")
    say_target("starting the Gateway (a new live login: approve it on IBKR Mobile)")
    try:
        switch.start_gateway(tgt, layout=layout)
        report.target_report.health = switch.ready(tgt, options.install.wait_s, say_target,
                                                   layout)
    except OpsError as exc:
        _fall_back(src, tgt, exc, options, say_source, layout)


def _fall_back(src: Host, tgt: Host, cause: OpsError, options: MigrateOptions,
               say: Progress, layout: Layout) -> None:
    """The target did not come up: stop it, bring the source back, and say so."""
    switch.stop_gateway(tgt, layout)
    say(f"{tgt.name} is not healthy ({cause}); restarting the Gateway here")
    switch.start_gateway(src, layout=layout)
    try:
        switch.ready(src, options.install.wait_s, say, layout)
    except OpsError as again:
        raise OpsError(f"{tgt.name} failed: {cause}; its Gateway is stopped. {src.name} was "
                       f"restarted but is not healthy either: {again}") from None
    notify(src, "error", f"ibkr-ops: migration to {tgt.name} failed ({cause}); this host "
                         "is serving again", layout)
    raise OpsError(f"{tgt.name} failed: {cause}; its Gateway is stopped and disabled; "
                   f"{src.name} was restarted and is healthy")

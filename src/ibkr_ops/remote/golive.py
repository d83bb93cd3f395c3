"""`invoke go-live`: switch one host from paper to live, and back with ``--rollback``.

Nothing changes until the host says a restart may go ahead and the running paper deployment
is healthy. The paper settings are kept on the host (0600) first, so a live login that fails
or never becomes healthy is rolled back automatically, by the install code path, to the
exact paper deployment that ran before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.layout import DEFAULT
from ibkr_ops.remote import switch
from ibkr_ops.remote.install import InstallOptions, Progress, install_files, install_on, notify
from ibkr_ops.remote.primitives import Host
from ibkr_ops.settings import Deployment

PAPER_BACKUP = f"{DEFAULT.backup_dir}/paper"
PAPER_CHECK_S = 30.0  # the running paper Gateway must be healthy within this, or no go


@dataclass(frozen=True)
class GoLiveOptions:
    """The install options (wait, host-key trust, notifications) and whether to --force."""

    install: InstallOptions = field(default_factory=InstallOptions)
    force: bool = False


@dataclass
class GoLiveReport:
    """What was done on the host and what the bot must change."""

    host: str
    steps: list[str] = field(default_factory=list)
    health: str = ""
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


def go_live(host: Host, live: Deployment, options: GoLiveOptions,
            progress: Progress) -> GoLiveReport:
    """Paper -> live over the caller's connection (every step, the install included, uses
    it); on any failure after the backup, back to paper and OpsError."""
    require_live(live, "the live credentials file")
    spec = host.name
    paper = switch.read_deployment(host)
    if paper.is_live:
        raise OpsError(f"{spec} is already live; `invoke go-live --host {spec} --rollback` "
                       "returns it to paper, `invoke install` changes live settings")
    report = GoLiveReport(spec)
    progress("pre-restart check (no switch inside the trading session unless --force)")
    report.steps.append("pre-restart check: " + switch.restart_allowed(
        host, force=options.force, why="go-live"))
    progress("checking the running paper deployment")
    report.steps.append("paper deployment: " + switch.ready(host, PAPER_CHECK_S, progress))
    report.steps.append(f"paper settings kept in {switch.backup(host, 'paper')} (0600)")
    try:
        report.health = _switch_to_live(host, live, options, progress)
    except OpsError as exc:
        _roll_back_after(host, exc, options, progress)
    return _conclude(host, report, paper, live, "info",
                     f"LIVE: {spec} now trades live ({report.health})")


def _switch_to_live(host: Host, live: Deployment, options: GoLiveOptions,
                    progress: Progress) -> str:
    """Put the live files in place, then one cold restart: a new login, second factor and all."""
    install_files(host, live, dataclasses.replace(options.install, allow_live_switch=True),
                  progress)
    wait = options.install.wait_s
    notify(host, "warning", f"LIVE: login starting on {host.name}: approve it on IBKR Mobile "
                            f"now (waiting up to {wait:.0f} s)")
    progress("cold restart: a new live login; approve it on IBKR Mobile")
    switch.start_gateway(host, restart=True)
    return switch.ready(host, wait, progress)


def _roll_back_after(host: Host, cause: OpsError, options: GoLiveOptions,
                     progress: Progress) -> None:
    """The live switch failed: back to the saved paper deployment, tell everyone, fail."""
    progress(f"live switch failed ({cause}); rolling back to paper")
    try:
        health = _restore_paper(host, options, progress)
    except OpsError as again:
        notify(host, "error", f"LIVE switch failed on {host.name} ({cause}) and the rollback "
                              f"to paper failed too ({again})")
        raise OpsError(f"live switch failed: {cause}; the rollback to paper failed too: "
                       f"{again}; the paper settings are in {PAPER_BACKUP}") from None
    notify(host, "error", f"go-live failed on {host.name}: {cause}; back on paper ({health})")
    raise OpsError(f"live switch failed: {cause}; rolled back to paper, which is healthy")


def _restore_paper(host: Host, options: GoLiveOptions, progress: Progress) -> str:
    """Install the saved paper deployment (the install path restarts what changed)."""
    paper = switch.read_deployment(host, f"{PAPER_BACKUP}/credentials.env",
                                   missing="go-live keeps it there; without it, return to paper "
                                           "with `invoke install --credentials PAPER_FILE`")
    report = install_on(host, paper, dataclasses.replace(options.install, notify=False), progress)
    if report.error:
        raise OpsError(report.error)
    return report.health


def rollback(host: Host, options: GoLiveOptions, progress: Progress) -> GoLiveReport:
    """`go-live --rollback` over the caller's connection: from live back to the paper
    deployment go-live saved."""
    spec = host.name
    live = switch.read_deployment(host)
    if not live.is_live:
        raise OpsError(f"{spec} is not live (it runs {live.trading_mode}); nothing to roll back")
    if switch.gateway_active(host):
        report = GoLiveReport(spec, steps=["pre-restart check: " + switch.restart_allowed(
            host, force=options.force, why="go-live rollback")])
    else:
        report = GoLiveReport(spec, steps=["the live Gateway is not running"])
    progress(f"restoring the paper settings from {PAPER_BACKUP}")
    report.health = _restore_paper(host, options, progress)
    return _conclude(host, report, live, switch.read_deployment(host), "warning",
                     f"ibkr-ops: {spec} is back on paper (rollback from live)")


def _conclude(host: Host, report: GoLiveReport, before: Deployment, after: Deployment,
              level: str, headline: str) -> GoLiveReport:
    """Record the new state, tell the bot's owner what changed, and notify from the host."""
    report.steps.append(f"{after.trading_mode}: {report.health}")
    report.bot = bot_changes(before, after)
    notify(host, level, f"{headline}; {'; '.join(report.bot)}")
    return report

"""`invoke upgrade`: a new Gateway build beside the running one, one switch, rollback by itself.

Nothing changes before every refusal is passed (``builds.check_upgrade``) and the host's
pre-restart check allows a restart. Then the new build is installed into its own directory
(the running Gateway goes on from its own), the running build's settings are kept on the
host (0600, as go-live keeps paper's), and the switch is one cold restart: a full login, so
the notification asks for the approval on IBKR Mobile. If the new build is not healthy in
time, or a read-only go-live check fails, the previous build comes back with the settings it
ran with, by the same switch, and the new build is removed. A successful switch removes the
builds beyond ``keep``. `install` with a new build on a host whose Gateway runs goes this way
too (``from_install``), never over the running build.

A host of Gateway instances has one installation for all of them, so every instance
switches together: each one's pre-restart check must allow it, each one's settings are kept,
the switch stops them all, re-points the link and starts them one after another (each once the
one before is healthy and checked, so no two logins overlap), and if any of them fails, all
of them go back to the previous build with their settings; the report and the notifications
name the instance that failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.gateway_installer import GatewayInstaller
from ibkr_ops.host import gatewayversion
from ibkr_ops.instances import Instance
from ibkr_ops.layout import Layout
from ibkr_ops.remote import builds, converge, gateways, switch, systemctl
from ibkr_ops.remote.builds import Build, Inventory
from ibkr_ops.remote.install import HostReport, InstallOptions, Progress, install_files, notify
from ibkr_ops.remote.primitives import Host, run_steps
from ibkr_ops.settings import Deployment


@dataclass(frozen=True)
class UpgradeOptions:
    """The install options (wait, notifications), --force and how many builds to keep."""

    install: InstallOptions = field(default_factory=InstallOptions)
    force: bool = False
    keep: int = builds.DEFAULT_KEEP


@dataclass
class UpgradeReport(switch.SwitchReport):
    """What the switch did: the build running now, the ones kept, how long it took."""

    running: str = ""
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    switch_s: float = 0.0
    rollback_s: float = 0.0
    error: str | None = None
    files: list[tuple[str, str]] = field(default_factory=list)  # the settings' install rows
    instances: list[str] = field(default_factory=list)  # none: the single-Gateway layout
    stopped: list[str] = field(default_factory=list)  # instances left stopped and disabled

    def lines(self) -> list[str]:
        """The report as the task prints it."""
        out = [*self.steps, f"running: IB Gateway {self.running or 'unknown'}"]
        if self.instances:
            out.append(f"instances (one installation, switched together): "
                       f"{', '.join(self.instances)}")
        if self.stopped:
            out.append(f"left stopped and disabled: {', '.join(self.stopped)} (each starts on "
                       "the running build when it is started again)")
        out.append("kept: " + (", ".join(self.kept) or "none"))
        if self.removed:
            out.append("removed: " + ", ".join(self.removed))
        if self.switch_s:
            out.append(f"switch: {self.switch_s:.1f} s from the restart to healthy")
        if self.rollback_s:
            out.append(f"rollback: {self.rollback_s:.1f} s from the restart to healthy")
        out.append(f"FAILED: {self.error}" if self.error else f"health: {self.health}")
        return out


def minimum(d: Deployment, today: dt.date | None = None) -> gatewayversion.Version:
    """The floor an installer must reach: IBKR_GATEWAY_MIN_VERSION, else the known one."""
    if d.gateway_min_version:
        return gatewayversion.parse(d.gateway_min_version)
    return gatewayversion.minimum_on(today or dt.date.today())


def inventory(host: Host, home: str) -> Inventory:
    """The host's builds, links, history and free space, in one round trip."""
    result = host.root(builds.inventory_command(home), what="listing the Gateway builds")
    return builds.parse_inventory(result.stdout)


def build_lines(host: Host) -> list[str]:
    """The running build and the kept ones, for `invoke status` (a line saying why not, on a
    host that has no deployment to read)."""
    try:
        d = _gateways(host)[0].deployment
        inv = inventory(host, d.home)
    except OpsError as exc:
        return [f"IB Gateway builds: unknown ({exc})"]
    return builds.describe(inv, inv.running(d.tws_major_vrsn, d.home))


Target = Deployment | Sequence[Instance]


def upgrade(host: Host, installer: GatewayInstaller, options: UpgradeOptions,
            progress: Progress, target: Target | None = None) -> UpgradeReport:
    """Install ``installer`` beside the running build and switch every Gateway of the host to
    it (with ``target``'s settings: `install`'s; by default the host's own with the new
    TWS_MAJOR_VRSN). Refusals raise UsageError (OpsError for a pre-restart check's) before
    anything changed; a failed switch rolls back and says so in the report's ``error``."""
    current, inv, running = _state(host)
    new = _targets(current, target, installer.tws_major_vrsn)
    for each in new:
        builds.check_upgrade(installer, inv, running, pin=each.deployment.gateway_sha256,
                             minimum=minimum(each.deployment), size=installer.path.stat().st_size,
                             home=each.deployment.home)
    report = _report(host, current, running)
    progress("pre-restart check (no switch inside the trading session unless --force)")
    report.steps += _allowed(host, _moving(current, report), options.force,
                             f"Gateway upgrade to {installer.version}")
    run_steps(host, [converge.install_gateway(new[0].deployment, installer, link=False)],
              progress)
    report.steps.append(f"installed IB Gateway {installer.version} beside "
                        f"{running.version if running else 'no running build'}")
    fresh = Build(installer.version, Layout.build_dir(new[0].deployment.home, installer.version))
    return _go(host, report, (current, new), fresh, running, fresh, options, progress,
               f"IB Gateway {installer.version} runs on {_where(host, current)}")


def rollback(host: Host, options: UpgradeOptions, progress: Progress) -> UpgradeReport:
    """`upgrade --rollback`: back to the build that ran before, with the current settings
    (a password rotated since still works) and its major version; rolled forward again by
    itself if that build does not become healthy."""
    current, inv, running = _state(host)
    previous = inv.previous(running)
    if previous is None:
        raise UsageError(f"{host.name} keeps no previous Gateway build (kept: "
                         f"{', '.join(b.version for b in inv.kept(running)) or 'none'}); "
                         "nothing to roll back to")
    report = _report(host, current, running)
    report.steps += _allowed(host, _moving(current, report), options.force,
                             f"Gateway rollback to {previous.version}")
    back = _targets(current, None, previous.major)
    return _go(host, report, (current, back), previous, running, None, options, progress,
               f"{_where(host, current)} is back on IB Gateway {previous.version} (rollback)")


def _gateways(host: Host) -> list[Instance]:
    """Every Gateway of the host's one installation, with the deployment it runs."""
    return [Instance(layout.credentials, switch.read_deployment(host, layout.credentials),
                     layout.instance, restart_set=True) for layout in gateways.on_host(host)]


def _state(host: Host) -> tuple[list[Instance], Inventory, Build | None]:
    """The Gateways the host runs, its builds, and the build its Gateways start."""
    current = _gateways(host)
    d = current[0].deployment
    inv = inventory(host, d.home)
    return current, inv, inv.running(d.tws_major_vrsn, d.home)


def _targets(current: list[Instance], target: Target | None, major: str) -> list[Instance]:
    """What each Gateway runs after the switch: the settings `install` gives it (``target``),
    else its own with ``major``; every Gateway of the host, in the host's order."""
    given = ([Instance("", target, None, restart_set=True)] if isinstance(target, Deployment)
             else list(target or ()))
    by_name = {i.name: i for i in given}
    return [by_name.get(i.name) or dataclasses.replace(
        i, deployment=dataclasses.replace(i.deployment, tws_major_vrsn=major))
        for i in current]


def _report(host: Host, current: list[Instance], running: Build | None) -> UpgradeReport:
    """The report of a switch, with the instances that stay stopped (the ones whose Gateway
    is disabled: an operator's stop, or go-live's rollback of a live instance)."""
    named = [i for i in current if i.name]
    stopped: list[str] = []
    if named:
        units = " ".join(i.layout.gateway_unit for i in named)
        states = str(host.root(f"systemctl is-enabled {units}", warn=True).stdout).split()
        stopped = [i.name for i, state in zip(named, states, strict=False)
                   if state != "enabled" and i.name]
        if len(stopped) == len(named):
            raise UsageError(f"every Gateway instance of {host.name} is stopped and disabled "
                             f"({', '.join(stopped)}); start one with `invoke install` first")
    return UpgradeReport(host.name, running=running.version if running else "",
                         instances=[i.name for i in named if i.name], stopped=stopped)


def _moving(found: Sequence[Instance], report: UpgradeReport) -> list[Instance]:
    """The Gateways the switch restarts: all but the ones left stopped."""
    return [i for i in found if i.name not in report.stopped]


def _where(host: Host, found: Sequence[Instance]) -> str:
    """The host, and its instances if it has any: 'vps1 (instances paper, live)'."""
    named = [i.name for i in found if i.name]
    return f"{host.name} (instances {', '.join(named)})" if named else host.name


def _whose(i: Instance) -> str:
    return f" (instance {i.name})" if i.name else ""


def _allowed(host: Host, current: list[Instance], force: bool, why: str) -> list[str]:
    """Every Gateway's pre-restart check, all before anything changes: they restart together,
    so one that refuses refuses the switch (OpsError naming it)."""
    steps = []
    for i in current:
        try:
            verdict = switch.restart_allowed(host, force=force, why=why, layout=i.layout)
        except OpsError as exc:
            if i.name is None:
                raise
            raise OpsError(f"instance {i.name} refuses the restart that every instance of "
                           f"the host needs: {exc}") from None
        steps.append(f"pre-restart check{_whose(i)}: {verdict}")
    return steps


def _go(host: Host, report: UpgradeReport,
        settings: tuple[list[Instance], list[Instance]], build: Build, running: Build | None,
        failed: Build | None, options: UpgradeOptions, progress: Progress,
        headline: str) -> UpgradeReport:
    """Keep the running build's settings, switch to ``build`` with ``settings[1]``; back to
    ``running`` (``failed`` removed) if it does not become healthy, else record and prune."""
    current, new = settings
    home = current[0].deployment.home
    backups = _keep_settings(host, current, running, report)
    try:
        report.switch_s, report.health, report.files = _switch(
            host, report, settings, build, options, progress, f"switching to IB Gateway "
            f"{build.version}")
    except OpsError as exc:
        _roll_back(host, exc, current, running, backups, failed, options, progress, report)
        return report
    host.root(builds.record(home, build.version, current[0].deployment.service_user))
    return _conclude(host, report, new, options, headline)


def from_install(host: Host, d: Target, installer: GatewayInstaller,
                 options: InstallOptions, progress: Progress) -> HostReport:
    """`install` with a new build on a host whose Gateways run: this module's switch (with the
    install's settings), as a HostReport."""
    started = time.monotonic()
    try:
        report = upgrade(host, installer, UpgradeOptions(install=options, force=options.force),
                         progress, target=d)
    except UsageError as exc:
        return HostReport(host.name, error=f"{exc}; nothing was changed",
                          seconds=time.monotonic() - started)
    except OpsError as exc:
        return HostReport(host.name, error=f"{exc} (`invoke upgrade --force` switches builds "
                          "inside the session)" if "not now" in str(exc) else str(exc),
                          seconds=time.monotonic() - started)
    items = [(name, status) for name, status in report.files if name != "IB Gateway"]
    items.insert(0, ("IB Gateway", f"changed ({'; '.join(report.lines()[:-1])})"))
    return HostReport(host.name, items=items, health=report.health, error=report.error,
                      seconds=time.monotonic() - started, instances=report.instances)


def _keep_settings(host: Host, current: list[Instance], running: Build | None,
                   report: UpgradeReport) -> list[str]:
    """Keep each Gateway's settings of the running build on the host and put that build last
    in the history; where each went, in ``current``'s order."""
    name = f"gateway-{running.version if running else 'none'}"
    kept = []
    for i in current:
        kept.append(switch.backup(host, name, i.layout))
        report.steps.append(f"settings of the running build{_whose(i)} kept in {kept[-1]} "
                            "(0600)")
    d = current[0].deployment
    if running is not None and inventory(host, d.home).history[-1:] != [running.version]:
        host.root(builds.record(d.home, running.version, d.service_user))
    return kept


class Restarted(OpsError):
    """The switch failed after the Gateways were stopped for it: the rollback restarts the
    previous build. (Before that, the previous build still runs and only its settings need
    putting back.)"""


def _switch(host: Host, report: UpgradeReport, settings: tuple[list[Instance], list[Instance]],
            build: Build, options: UpgradeOptions, progress: Progress,
            doing: str) -> tuple[float, str, list[tuple[str, str]]]:
    """Put ``settings[1]`` in place, point its major's link at ``build`` and cold-restart
    every Gateway but the ones left stopped, one after another: (seconds from the restart to
    all healthy and checked, the health, the settings' rows)."""
    current, new = settings
    d = new[0].deployment
    if d.tws_major_vrsn != current[0].deployment.tws_major_vrsn:
        # Not the running major's link: pointing it now changes nothing that runs, and lets
        # the install below find the build there.
        host.root(builds.link(d.home, d.tws_major_vrsn, build.path, d.service_user),
                  what="linking the build")
    installed = install_files(host, new, dataclasses.replace(options.install, gateway=None),
                              progress)
    wait = options.install.wait_s
    started = time.monotonic()
    healths = []
    moving = _moving(new, report)
    for n, i in enumerate(moving):
        where = f"{host.name} instance {i.name}" if i.name else host.name
        if options.install.notify:
            notify(host, "warning", f"ibkr-ops: {doing} on {where}: a new login, approve it "
                                    f"on IBKR Mobile now (waiting up to {wait:.0f} s)", i.layout)
        progress(f"{doing}{_whose(i)}: {'one cold restart' if n == 0 else 'its cold start'}, "
                 "a new login (approve it on IBKR Mobile)")
        try:
            if n == 0:  # every Gateway stops, the link moves, the first one starts
                host.root(builds.switch_command(d.home, d.tws_major_vrsn, build.path,
                                                d.service_user, [g.layout for g in moving]),
                          what="switching the Gateway's build", timeout=240)
            else:
                host.root(systemctl.afresh("start", i.layout.gateway_unit),
                          what=f"starting the Gateway{_whose(i)}", timeout=180)
            health = switch.ready(host, wait, progress, i.layout)
        except OpsError as exc:
            raise Restarted(f"instance {i.name} failed: {exc}" if i.name else str(exc)) from None
        healths.append(f"{i.name}: {health}" if i.name else health)
    return time.monotonic() - started, "; ".join(healths), installed.items


def _roll_back(host: Host, cause: OpsError, current: list[Instance], running: Build | None,
               backups: list[str], failed: Build | None, options: UpgradeOptions,
               progress: Progress, report: UpgradeReport) -> None:
    """The switch failed: back to ``running`` with the settings kept in ``backups``, remove
    the ``failed`` new build, tell everyone; the report carries the error."""
    if running is None:
        report.error = f"{cause}; no build ran before, so there is none to roll back to"
        return
    home, where = current[0].deployment.home, _where(host, current)
    whom = "every instance" if report.instances else "the Gateway"
    progress(f"switch failed ({cause}); rolling back {whom} to IB Gateway {running.version}")
    try:
        kept = [dataclasses.replace(i, deployment=switch.read_deployment(
            host, f"{backup}/credentials.env")) for i, backup in zip(current, backups,
                                                                     strict=True)]
        if isinstance(cause, Restarted):
            found = inventory(host, home)
            # A build from before builds were kept has moved into builds/ while stopped.
            back = found.by_version(running.version) or running
            report.rollback_s, report.health, _ = _switch(
                host, report, (current, kept), back, dataclasses.replace(
                    options, install=dataclasses.replace(options.install, notify=False)),
                progress, f"rolling back to IB Gateway {running.version}")
        else:  # never stopped: the previous build still runs, its settings come back
            install_files(host, kept, dataclasses.replace(options.install, gateway=None),
                          progress)
            report.health = "not stopped"
    except OpsError as again:
        report.error = (f"{cause}; the rollback to IB Gateway {running.version} failed too: "
                        f"{again}; the settings are in {', '.join(backups)}")
        _tell(host, current, "error", f"ibkr-ops: Gateway switch failed on {where} ({cause}) "
                                      f"and the rollback failed too ({again})")
        return
    if failed is not None:
        host.root(builds.remove([failed], inventory(host, home), home))
        report.steps.append(f"removed the failed build {failed.version}")
    back_on = (f"rolled back every instance to IB Gateway {running.version}, each healthy "
               "again with its settings" if report.instances else
               f"rolled back to IB Gateway {running.version}, which is healthy again with its "
               "settings")
    report.error = (f"{cause}; {back_on}" if isinstance(cause, Restarted) else
                    f"{cause}; IB Gateway {running.version} was not stopped and runs on with "
                    "its settings")
    _tell(host, current, "error", f"ibkr-ops: Gateway switch failed on {where}: {cause}; "
                                  f"back on IB Gateway {running.version} ({report.health})")


def _tell(host: Host, found: Sequence[Instance], level: str, message: str) -> None:
    """One notification through each Gateway's notifier (each may have a webhook of its own)."""
    for i in found:
        notify(host, level, message, i.layout)


def _conclude(host: Host, report: UpgradeReport, new: list[Instance], options: UpgradeOptions,
              headline: str) -> UpgradeReport:
    """Prune beyond ``keep``, fill in the report, notify."""
    d = new[0].deployment
    inv = inventory(host, d.home)
    now = inv.running(d.tws_major_vrsn, d.home)
    gone = builds.prune_choice(inv, now, options.keep)
    if gone:
        host.root(builds.remove(gone, inv, d.home), what="removing old Gateway builds")
    report.running = now.describe() if now else "unknown"
    report.kept = [b.describe() for b in inv.kept(now) if b not in gone]
    report.removed = [b.version for b in gone]
    if options.install.notify:
        kept = [b.version for b in inv.kept(now) if b not in gone]
        _tell(host, new, "info", f"ibkr-ops: {headline} ({report.health}); kept: "
                                 f"{', '.join(kept) or 'none'}")
    return report

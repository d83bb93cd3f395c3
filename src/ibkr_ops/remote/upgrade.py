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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.gateway_installer import GatewayInstaller
from ibkr_ops.host import gatewayversion
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import builds, converge, switch
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
class UpgradeReport:
    """What the switch did: the build running now, the ones kept, how long it took."""

    host: str
    steps: list[str] = field(default_factory=list)
    running: str = ""
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    switch_s: float = 0.0
    rollback_s: float = 0.0
    health: str = ""
    error: str | None = None
    files: list[tuple[str, str]] = field(default_factory=list)  # the settings' install rows

    def lines(self) -> list[str]:
        """The report as the task prints it."""
        out = [*self.steps, f"running: IB Gateway {self.running or 'unknown'}"]
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
        d = switch.read_deployment(host)
        inv = inventory(host, d.home)
    except OpsError as exc:
        return [f"IB Gateway builds: unknown ({exc})"]
    return builds.describe(inv, inv.running(d.tws_major_vrsn, d.home))


def upgrade(host: Host, installer: GatewayInstaller, options: UpgradeOptions,
            progress: Progress, target: Deployment | None = None) -> UpgradeReport:
    """Install ``installer`` beside the running build and switch to it (with ``target``'s
    settings: `install`'s; by default the host's own with the new TWS_MAJOR_VRSN). Refusals
    raise UsageError before anything changed; a failed switch rolls back and says so in
    the report's ``error``."""
    current, inv, running = _state(host)
    new = target or dataclasses.replace(current, tws_major_vrsn=installer.tws_major_vrsn)
    builds.check_upgrade(installer, inv, running, pin=new.gateway_sha256, minimum=minimum(new),
                         size=installer.path.stat().st_size, home=current.home)
    report = UpgradeReport(host.name, running=running.version if running else "")
    progress("pre-restart check (no switch inside the trading session unless --force)")
    report.steps.append("pre-restart check: " + switch.restart_allowed(
        host, force=options.force, why=f"Gateway upgrade to {installer.version}"))
    run_steps(host, [converge.install_gateway(new, installer, link=False)], progress)
    report.steps.append(f"installed IB Gateway {installer.version} beside "
                        f"{running.version if running else 'no running build'}")
    fresh = Build(installer.version, Layout.build_dir(current.home, installer.version))
    return _go(host, report, (current, new), fresh, running, fresh, options, progress,
               f"IB Gateway {installer.version} runs on {host.name}")


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
    report = UpgradeReport(host.name, running=running.version if running else "")
    report.steps.append("pre-restart check: " + switch.restart_allowed(
        host, force=options.force, why=f"Gateway rollback to {previous.version}"))
    back = dataclasses.replace(current, tws_major_vrsn=previous.major)
    return _go(host, report, (current, back), previous, running, None, options, progress,
               f"{host.name} is back on IB Gateway {previous.version} (rollback)")


def _state(host: Host) -> tuple[Deployment, Inventory, Build | None]:
    """The deployment the host runs, its builds, and the build its Gateway starts."""
    current = switch.read_deployment(host)
    inv = inventory(host, current.home)
    return current, inv, inv.running(current.tws_major_vrsn, current.home)


def _go(host: Host, report: UpgradeReport, settings: tuple[Deployment, Deployment],
        build: Build, running: Build | None, failed: Build | None, options: UpgradeOptions,
        progress: Progress, headline: str) -> UpgradeReport:
    """Keep the running build's settings, switch to ``build`` with ``settings[1]``; back to
    ``running`` (``failed`` removed) if it does not become healthy, else record and prune."""
    current, d = settings
    backup = _keep_settings(host, current, running, report)
    try:
        report.switch_s, report.health, report.files = _switch(
            host, current, d, build, options, progress, f"switching to IB Gateway "
            f"{build.version}")
    except OpsError as exc:
        _roll_back(host, exc, current, running, backup, failed, options, progress, report)
        return report
    host.root(builds.record(current.home, build.version, current.service_user))
    return _conclude(host, report, d, options, headline)


def from_install(host: Host, d: Deployment, installer: GatewayInstaller,
                 options: InstallOptions, progress: Progress) -> HostReport:
    """`install` with a new build on a host whose Gateway runs: this module's switch (with the
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
                      seconds=time.monotonic() - started)


def _keep_settings(host: Host, current: Deployment, running: Build | None,
                   report: UpgradeReport) -> str:
    """Keep the running build's settings on the host and put it last in the history."""
    backup = switch.backup(host, f"gateway-{running.version if running else 'none'}")
    report.steps.append(f"settings of the running build kept in {backup} (0600)")
    if running is not None and inventory(host, current.home).history[-1:] != [running.version]:
        host.root(builds.record(current.home, running.version, current.service_user))
    return backup


class Restarted(OpsError):
    """The switch failed after the Gateway was stopped for it: the rollback restarts the
    previous build. (Before that, the previous build still runs and only its settings need
    putting back.)"""


def _switch(host: Host, current: Deployment, d: Deployment, build: Build,
            options: UpgradeOptions, progress: Progress,
            doing: str) -> tuple[float, str, list[tuple[str, str]]]:
    """Put ``d``'s settings in place, point its major's link at ``build`` and cold-restart:
    (seconds from the restart to healthy and checked, the health, the settings' rows)."""
    if d.tws_major_vrsn != current.tws_major_vrsn:
        # Not the running major's link: pointing it now changes nothing that runs, and lets
        # the install below find the build there.
        host.root(builds.link(d.home, d.tws_major_vrsn, build.path, d.service_user),
                  what="linking the build")
    installed = install_files(host, d, dataclasses.replace(options.install, gateway=None),
                              progress)
    wait = options.install.wait_s
    if options.install.notify:
        notify(host, "warning", f"ibkr-ops: {doing} on {host.name}: a new login, approve it on "
                                f"IBKR Mobile now (waiting up to {wait:.0f} s)")
    progress(f"{doing}: one cold restart, a new login (approve it on IBKR Mobile)")
    started = time.monotonic()
    try:
        host.root(builds.switch_command(d.home, d.tws_major_vrsn, build.path, d.service_user,
                                        DEFAULT), what="switching the Gateway's build",
                  timeout=240)
        health = switch.ready(host, wait, progress)
    except OpsError as exc:
        raise Restarted(str(exc)) from None
    return time.monotonic() - started, health, installed.items


def _roll_back(host: Host, cause: OpsError, current: Deployment, running: Build | None,
               backup: str, failed: Build | None, options: UpgradeOptions, progress: Progress,
               report: UpgradeReport) -> None:
    """The switch failed: back to ``running`` with the settings kept in ``backup``, remove the
    ``failed`` new build, tell everyone; the report carries the error."""
    if running is None:
        report.error = f"{cause}; no build ran before, so there is none to roll back to"
        return
    progress(f"switch failed ({cause}); rolling back to IB Gateway {running.version}")
    try:
        kept = switch.read_deployment(host, f"{backup}/credentials.env")
        if isinstance(cause, Restarted):
            found = inventory(host, current.home)
            # A build from before builds were kept has moved into builds/ while stopped.
            back = found.by_version(running.version) or running
            report.rollback_s, report.health, _ = _switch(
                host, current, kept, back, dataclasses.replace(
                    options, install=dataclasses.replace(options.install, notify=False)),
                progress, f"rolling back to IB Gateway {running.version}")
        else:  # never stopped: the previous build still runs, its settings come back
            install_files(host, kept, dataclasses.replace(options.install, gateway=None),
                          progress)
            report.health = "not stopped"
    except OpsError as again:
        report.error = (f"{cause}; the rollback to IB Gateway {running.version} failed too: "
                        f"{again}; its settings are in {backup}")
        notify(host, "error", f"ibkr-ops: Gateway switch failed on {host.name} ({cause}) and "
                              f"the rollback failed too ({again})")
        return
    if failed is not None:
        host.root(builds.remove([failed], inventory(host, current.home), current.home))
        report.steps.append(f"removed the failed build {failed.version}")
    report.error = (f"{cause}; rolled back to IB Gateway {running.version}, which is healthy "
                    "again with its settings" if isinstance(cause, Restarted) else
                    f"{cause}; IB Gateway {running.version} was not stopped and runs on with "
                    "its settings")
    notify(host, "error", f"ibkr-ops: Gateway switch failed on {host.name}: {cause}; back on "
                          f"IB Gateway {running.version} ({report.health})")


def _conclude(host: Host, report: UpgradeReport, d: Deployment, options: UpgradeOptions,
              headline: str) -> UpgradeReport:
    """Prune beyond ``keep``, fill in the report, notify."""
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
        notify(host, "info", f"ibkr-ops: {headline} ({report.health}); kept: "
                             f"{', '.join(kept) or 'none'}")
    return report

"""`invoke upgrade`: switch a host's Gateway to a new build beside the running one, or back."""

from __future__ import annotations

from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.remote import artifacts, builds
from ibkr_ops.remote import upgrade as lifecycle
from ibkr_ops.remote.install import InstallOptions
from ibkr_ops.tasks.common import connected, user_errors
from ibkr_ops.tasks.hosts import HOST_HELP
from ibkr_ops.tasks.report import progress_for


@task(help={
    "host": HOST_HELP,
    "gateway_installer": "the new offline IB Gateway installer for Linux (.sh)",
    "rollback": "switch back to the build that ran before (kept on the host)",
    "force": "switch even inside the trading session or a blackout window",
    "keep_builds": "builds to keep after a successful switch, the running one counted "
                   "(default 2: the running and the previous one)",
    "trust_new_host": "accept and record an unknown SSH host key (never a changed one)",
    "wait": "seconds the new build has to log in and pass the checks before the previous one "
            "comes back (default 300; on a host of instances, each instance's Gateway in turn)"})
def upgrade(c: Context, host: str | None = None, gateway_installer: str | None = None,
            rollback: bool = False, force: bool = False, keep_builds: str = "2",
            trust_new_host: bool = False, wait: float = 300.0) -> None:
    """Switch the Gateway (on a host of instances, every instance) to a new build beside the
    running one; roll back if it fails."""
    with user_errors():
        if not host:
            raise UsageError("--host is required")
        if rollback == bool(gateway_installer):
            raise UsageError("give --gateway-installer NEW.sh, or --rollback (not both)")
        options = lifecycle.UpgradeOptions(InstallOptions(wait_s=wait), force,
                                           builds.check_keep(keep_builds))
        installer = (artifacts.gateway_installer(Path(gateway_installer)) if gateway_installer
                     else None)
        with connected(host, trust_new_host) as target:
            say = progress_for(host)
            try:
                report = (lifecycle.rollback(target, options, say) if installer is None
                          else lifecycle.upgrade(target, installer, options, say))
            except OSError as exc:  # the connection dropped mid-switch
                raise OpsError(f"connection lost ({exc.strerror or type(exc).__name__}); "
                               f"`invoke status --host {host}` shows which build runs") from None
    print(f"\n== {report.host}")
    for line in report.lines():
        print(f"   {line}")
    if report.error:
        raise Exit(code=1)

"""Tasks that act on gateway hosts over SSH: install, status, logs, restart and the host tools."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops.botunit import check_wait, service_names
from ibkr_ops.errors import UsageError
from ibkr_ops.host import cli
from ibkr_ops.instances import Instance
from ibkr_ops.layout import DEFAULT, HEALTH_CHECK, NOTIFY, PRE_RESTART, Layout
from ibkr_ops.remote import gateways, upgrade
from ibkr_ops.remote.artifacts import gateway_installer, ibc_from_release, ibc_from_zip
from ibkr_ops.remote.gateways import tool_command
from ibkr_ops.remote.install import HostReport, InstallOptions, install_host
from ibkr_ops.settings import Deployment
from ibkr_ops.tasks.common import (
    CREDENTIALS_HELP,
    SETTING_HELP,
    connected,
    instances,
    ssh_configs,
    user_errors,
)
from ibkr_ops.tasks.report import print_report, progress_for, summarize

HOST_HELP = "[user@]host[:port] or a name from your ssh config or the sandbox"


def install_options(ibc_zip: str | None, ibc_version: str | None, gateway_installer_path: str | None,
                    dry_run: bool, trust_new_host: bool, wait: float, *,
                    bot_units: list[str] | None = None, bot_wait: str = "300") -> InstallOptions:
    """Check the artifact and bot options locally, before any host is contacted."""
    if ibc_zip and ibc_version:
        raise UsageError("give --ibc-zip or --ibc-version, not both")
    return InstallOptions(
        bot_units=service_names(bot_units or []), bot_wait_s=check_wait(bot_wait),
        ibc=ibc_from_zip(Path(ibc_zip)) if ibc_zip else
        ibc_from_release(ibc_version) if ibc_version else None,
        gateway=gateway_installer(Path(gateway_installer_path)) if gateway_installer_path else None,
        dry_run=dry_run, trust_new_host=trust_new_host, wait_s=wait, ssh_configs=ssh_configs())


def run_install(hosts: list[str], d: Deployment | Sequence[Instance],
                options: InstallOptions) -> list[HostReport]:
    """Install on every host in parallel (one deployment on the single-Gateway layout, or the
    instances every host gets); one host failing does not stop the others."""
    if not hosts:
        raise UsageError("give at least one --host")
    with ThreadPoolExecutor(max_workers=min(len(hosts), 16)) as pool:
        reports = list(pool.map(lambda h: install_host(h, d, options, progress_for(h)), hosts))
    for report in reports:
        print_report(report)
    return reports


@task(iterable=["host", "credentials", "bot_unit"], help={
    "host": HOST_HELP + " (repeat for several hosts)",
    "credentials": CREDENTIALS_HELP,
    "ibc_zip": "IBC's Linux zip on this machine (IBCLinux-X.Y.Z.zip)",
    "ibc_version": "IBC release X.Y.Z for the host to download itself instead",
    "gateway_installer": "offline IB Gateway installer for Linux (.sh)",
    "dry_run": "show the plan and diffs (secrets masked); change nothing",
    "trust_new_host": "accept and record an unknown SSH host key (never a changed one)",
    "wait": "seconds to wait for the Gateway to become healthy (default 300)",
    "bot_unit": "your bot's systemd service (NAME[.service]; repeatable): a drop-in starts it "
                "only after the Gateway, once its API answers",
    "bot_wait": "seconds a --bot-unit start waits for a healthy Gateway before it fails "
                "(default 300)",
    **SETTING_HELP})
def install(c: Context, host: list[str], credentials: list[str] | None = None,
            ibc_zip: str | None = None, ibc_version: str | None = None,
            gateway_installer: str | None = None, dry_run: bool = False,
            trust_new_host: bool = False, wait: float = 300.0, mode: str | None = None,
            api_port: str | None = None, api_host: str | None = None,
            read_only_api: str | None = None, trusted_ips: str | None = None,
            service_user: str | None = None, restart_time: str | None = None,
            timezone: str | None = None, restart_mode: str | None = None,
            memory_max_mb: str | None = None, bot_unit: list[str] | None = None,
            bot_wait: str = "300") -> None:
    """Install or update the Gateway stack on one or more hosts over SSH.

    With several --credentials, each file is one Gateway instance of every host, all
    installed in one plan; a file alone keeps the single-Gateway layout unless it names
    its instance (IBKR_INSTANCE), which installs that instance and leaves the others.
    """
    with user_errors():
        found = instances(credentials, {
            "mode": mode, "api_port": api_port, "api_host": api_host,
            "read_only_api": read_only_api, "trusted_ips": trusted_ips,
            "service_user": service_user, "restart_time": restart_time, "timezone": timezone,
            "restart_mode": restart_mode, "memory_max_mb": memory_max_mb})
        options = install_options(ibc_zip, ibc_version, gateway_installer, dry_run,
                                  trust_new_host, wait, bot_units=bot_unit, bot_wait=bot_wait)
        reports = run_install(host, found, options)
        failure = summarize(reports)
    if failure:
        # Refused as bad input everywhere (memory, a migration none of the files fits): 2.
        usage = all(r.exit_code == 2 for r in reports if r.error)
        raise Exit(f"error: {failure}", code=2 if usage else 1)


INSTANCE_HELP = "the Gateway instance (default: every Gateway of the host)"


def _on_host(host: str | None, instance: str | None,
             commands: Callable[[list[Layout]], list[str]], *, pty: bool = False) -> int:
    """Run host commands as root over SSH with their output shown, one or more per Gateway
    (``instance``, or each the host has, found over the same connection); return the worst
    exit status."""
    if not host:
        raise UsageError("--host is required")
    with connected(host) as target:
        layouts = gateways.on_host(target, instance)
        return max(int(target.root(command, warn=True, show=True, pty=pty).exited)
                   for command in commands(layouts))


def _one(host: str | None, instance: str | None, command: Callable[[Layout], str]) -> int:
    """Run a command on one Gateway: ``instance``, or the host's only one; a host with
    several and none named is refused, naming them."""
    def only(layouts: list[Layout]) -> list[str]:
        if len(layouts) > 1:
            raise UsageError(f"this host runs several Gateways ({gateways.names(layouts)}); "
                             "name one with --instance")
        return [command(layouts[0])]

    return _on_host(host, instance, only)


def _status(layout: Layout) -> str:
    health = layout.health_check_tool
    timers = " ".join((layout.restart_timer, layout.health_timer))
    title = f"echo '== Gateway instance {layout.instance}'; " if layout.instance else ""
    return (f"{title}systemctl --no-pager status {layout.display_unit} {layout.gateway_unit} "
            f"{layout.watch_unit} | head -n 40; systemctl --no-pager list-timers {timers}; "
            f"{tool_command(health, layout, '--history')}; {tool_command(health, layout)}")


@task(help={"host": HOST_HELP, "instance": INSTANCE_HELP})
def status(c: Context, host: str | None = None, instance: str | None = None) -> None:
    """Show the Gateway's build, units, timers, a health check and restart history on a host."""
    with user_errors():
        if host:
            with connected(host) as target:
                print("\n".join(upgrade.build_lines(target)))
        code = _on_host(host, instance, lambda layouts: [_status(g) for g in layouts])
    if code:
        raise Exit(code=code)


@task(help={"host": HOST_HELP, "instance": INSTANCE_HELP,
            "follow": "keep printing new lines (Ctrl-C to stop)",
            "lines": "how many recent lines to show (default 100)"})
def logs(c: Context, host: str | None = None, instance: str | None = None, follow: bool = False,
         lines: int = 100) -> None:
    """Show the journal of the Gateway, its display, restarts and health checks."""
    def journal(layouts: list[Layout]) -> list[str]:
        units = " ".join(f"-u {u}" for g in layouts for u in g.journal_units)
        return [f"journalctl --no-pager {units} -n {int(lines)}" + (" --follow" if follow else "")]

    with user_errors():
        _on_host(host, instance, journal, pty=follow)


@task(help={"host": HOST_HELP, "instance": "the Gateway instance to restart (required on a host "
                                           "with several)",
            "cold": "full restart with a new login (second factor!)",
            "force": "restart even inside the trading session or a blackout window"})
def restart(c: Context, host: str | None = None, instance: str | None = None, cold: bool = False,
            force: bool = False) -> None:
    """Restart the Gateway now: warm through IBC unless --cold; waits until healthy."""
    args = ["--mode", "cold" if cold else "warm"] + (["--force"] if force else [])
    with user_errors():
        code = _one(host, instance, lambda g: tool_command(g.restart_tool, g, *args))
    if code:
        raise Exit(code=code)


def _tool(host: str | None, instance: str | None, name: str, args: list[str],
          local: Callable[[list[str]], int], *, each: bool = True) -> None:
    """Run a host tool on ``host`` over SSH, or here (this machine is the host) without one.
    With no instance named, over SSH: once per Gateway of the host (``each``), or once with
    no instance, for a tool that covers them all itself."""
    def commands(layouts: list[Layout]) -> list[str]:
        chosen = layouts if each or instance else [DEFAULT]
        return [tool_command(DEFAULT.tool(name), g, *args) for g in chosen]

    with user_errors():
        where = ["--instance", instance] if instance else []
        code = _on_host(host, instance, commands) if host else local([*where, *args])
    if code:
        raise Exit(code=code)


@task(name="health-check", help={"host": HOST_HELP + " (default: this machine)",
                                 "instance": INSTANCE_HELP, "json": "print the JSON result"})
def health_check(c: Context, host: str | None = None, instance: str | None = None,
                 json: bool = False) -> None:
    """Run the layered health check (exit 0 healthy, 1 unhealthy)."""
    # With no instance the host's health check checks every Gateway itself (one report).
    _tool(host, instance, HEALTH_CHECK, ["--json"] if json else [], cli.health_main, each=False)


@task(name="pre-restart-check", help={"host": HOST_HELP + " (default: this machine)",
                                      "instance": INSTANCE_HELP,
                                      "now": "pretend it is this ISO-8601 time",
                                      "force": "allow the restart anyway (logged)"})
def pre_restart_check(c: Context, host: str | None = None, instance: str | None = None,
                      now: str | None = None, force: bool = False) -> None:
    """Say whether a Gateway restart may go ahead now (for every Gateway, unless named)."""
    args = (["--now", now] if now else []) + (["--force"] if force else [])
    _tool(host, instance, PRE_RESTART, args, cli.prerestart_main)


@task(help={"host": HOST_HELP + " (default: this machine)",
            "instance": "the Gateway instance whose webhook and title to use (default: each "
                        "Gateway's, one message each)",
            "level": "info, warning or error", "message": "text to send"})
def notify(c: Context, message: str, host: str | None = None, instance: str | None = None,
           level: str = "info") -> None:
    """Send a Discord notification (from the host, which holds the webhook)."""
    if level not in ("info", "warning", "error"):
        raise Exit("error: --level must be info, warning or error", code=2)
    _tool(host, instance, NOTIFY, ["--level", level, message], cli.notify_main)

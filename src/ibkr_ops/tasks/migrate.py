"""Tasks that move a running deployment: `migrate` (host to host) and `go-live` (paper to live)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from invoke.context import Context
from invoke.tasks import task

from ibkr_ops.errors import UsageError
from ibkr_ops.host import schema
from ibkr_ops.host.installed import option_instance
from ibkr_ops.instances import Instance
from ibkr_ops.remote import golive
from ibkr_ops.remote.golive import GoLiveOptions, GoLiveReport
from ibkr_ops.remote.install import InstallOptions
from ibkr_ops.remote.migrate import MigrateOptions, MigrateReport, refuse_same_host
from ibkr_ops.remote.migrate import migrate as run_migrate
from ibkr_ops.settings import Deployment
from ibkr_ops.tasks.common import connected, instances, ssh_configs, user_errors
from ibkr_ops.tasks.hosts import HOST_HELP, install_options
from ibkr_ops.tasks.report import print_report, progress_for


def print_migration(report: MigrateReport, *, dry_run: bool) -> None:
    """The source's steps, the settings carried (masked), the target's report, the bot's part."""
    print(f"\n== {report.source} (source)")
    for line in report.source_steps:
        print(f"   {line}")
    for warning in report.warnings:
        print(f"   warning: {warning}")
    if dry_run:
        print("   settings to carry over:")
        for key, value in report.settings.items():
            print(f"     {key}={value}")
    if report.target_report is not None:
        print_report(report.target_report)
    for line in report.bot:
        print(line)


@task(help={
    "source": "host running the deployment now: " + HOST_HELP,
    "target": "host to move it to: " + HOST_HELP,
    "instance": "the source's Gateway instance to move (it keeps its name on the target); "
                "default: the source's only Gateway",
    "stop_source": "once the target is healthy, stop and disable the source's Gateway "
                   "(files kept; required in live mode)",
    "dry_run": "show what would be read, written and stopped on each host; change nothing",
    "ibc_zip": "IBC's Linux zip for the target (IBCLinux-X.Y.Z.zip), if it lacks IBC",
    "ibc_version": "IBC release X.Y.Z for the target to download itself instead",
    "gateway_installer": "offline IB Gateway installer (.sh) for the target, if it lacks one",
    "trust_new_host": "accept and record an unknown SSH host key (never a changed one)",
    "wait": "seconds to wait for the target's Gateway to become healthy (default 300)"})
def migrate(c: Context, source: str | None = None, target: str | None = None,
            instance: str | None = None, stop_source: bool = False, dry_run: bool = False,
            ibc_zip: str | None = None, ibc_version: str | None = None,
            gateway_installer: str | None = None,
            trust_new_host: bool = False, wait: float = 300.0) -> None:
    """Move a running deployment to another host; switch only once it is healthy there."""
    with user_errors():
        if not source or not target:
            raise UsageError("give --source HOST and --target HOST")
        install = install_options(ibc_zip, ibc_version, gateway_installer, False,
                                  trust_new_host, wait)
        if instance is not None:
            option_instance(instance)
        refuse_same_host(source, target, ssh_configs())
        with connected(source, trust_new_host) as src, connected(target, trust_new_host) as tgt:
            report = run_migrate(src, tgt, MigrateOptions(install, stop_source, dry_run, instance),
                                 progress_for)
        print_migration(report, dry_run=dry_run)


def confirm_live(d: Deployment, host: str, *, yes_live: bool,
                 ask: Callable[[str], str] | None) -> None:
    """At a terminal the user types the live username back; without one only --yes-live."""
    if yes_live:
        return
    if ask is None:
        raise UsageError(f"go-live switches {host} to LIVE trading; without a terminal to "
                         "confirm at, give --yes-live")
    typed = ask(f"This switches {host} to LIVE trading as {d.username}.\n"
                "Type the live username to confirm: ")
    if typed.strip() != d.username:
        raise UsageError("the username typed does not match the live file; nothing was changed")


def print_go_live(report: GoLiveReport) -> None:
    print(f"\n== {report.host}")
    for line in report.steps:
        print(f"   {line}")
    for line in report.bot:
        print(line)


@task(name="go-live", help={
    "host": HOST_HELP,
    "credentials": "the live credentials file (mode 0600, IBKR_TRADING_MODE=live)",
    "instance": "the Gateway instance to switch to live, or a new one to add beside the host's "
                "others (default: the file's IBKR_INSTANCE, else the host's single Gateway)",
    "yes_live": "confirm without a terminal (scripts, CI); at a terminal you type the username",
    "rollback": "return to the paper deployment go-live saved on the host",
    "force": "switch even inside the trading session or a blackout window",
    "trust_new_host": "accept and record an unknown SSH host key (never a changed one)",
    "wait": "seconds to wait for the live login, second factor included (default 300)"})
def go_live(c: Context, host: str | None = None, credentials: str | None = None,
            instance: str | None = None, yes_live: bool = False, rollback: bool = False,
            force: bool = False, trust_new_host: bool = False, wait: float = 300.0) -> None:
    """Switch a host (or one Gateway instance) from paper to live trading (or back with
    the rollback option); a new instance is added live beside the host's others."""
    with user_errors():
        if not host:
            raise UsageError("--host is required")
        if instance is not None:
            option_instance(instance)
        options = GoLiveOptions(InstallOptions(wait_s=wait), force)
        live = None
        if not rollback:
            live = live_instance(credentials, instance)
            golive.require_live(live.deployment, credentials or "")
            confirm_live(live.deployment, host if live.name is None else
                         f"{host} instance {live.name}", yes_live=yes_live,
                         ask=input if sys.stdin.isatty() else None)
        with connected(host, trust_new_host) as target:
            print_go_live(golive.rollback(target, options, progress_for(host), instance)
                          if live is None
                          else golive.go_live(target, live, options, progress_for(host)))


def live_instance(credentials: str | None, instance: str | None) -> Instance:
    """The live Gateway the file describes, in the instance --instance or its own
    IBKR_INSTANCE names (the two must agree), or the host's single Gateway."""
    (found,) = instances([credentials] if credentials else None, {})
    if instance is None or found.name == instance:
        return found
    if found.name is not None:
        raise UsageError(f"{credentials} says {schema.INSTANCE.key}={found.name}, but "
                         f"--instance {instance}: give one of them")
    named = dataclasses.replace(found.deployment, instance=instance)
    return dataclasses.replace(found, deployment=named, name=instance)

"""`invoke uninstall`: take the product off a host, or show what that would remove."""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Callable

from invoke.context import Context
from invoke.tasks import task

from ibkr_ops import demo
from ibkr_ops.errors import UsageError
from ibkr_ops.layout import DEFAULT
from ibkr_ops.remote.uninstall import (
    UninstallOptions,
    UninstallPlan,
    UninstallReport,
    uninstall_on,
)
from ibkr_ops.tasks.common import connected, user_errors
from ibkr_ops.tasks.hosts import HOST_HELP
from ibkr_ops.tasks.report import progress_for

# `invoke demo` installs a Discord receiver in its guest beside the product: it goes too.
_DEMO_UNITS = (demo.DISCORD_UNIT,)
_DEMO_PATHS = (posixpath.dirname(demo.DISCORD_ZIPAPP),)


def confirm_live(host: str, plan: UninstallPlan, *, yes_live: bool,
                 ask: Callable[[str], str] | None) -> None:
    """A live Gateway (or one whose mode does not read) goes only when confirmed: at a
    terminal the user types the host back, without one only --yes-live does."""
    if not plan.live or yes_live:
        return
    which = ", ".join(plan.live)
    if ask is None:
        raise UsageError(f"{host} runs a LIVE Gateway ({which}); uninstalling stops its "
                         "trading: without a terminal to confirm at, give --yes-live")
    typed = ask(f"This uninstalls the LIVE Gateway ({which}) from {host}; trading through it "
                "stops.\nType the host name to confirm: ")
    if typed.strip() != host:
        raise UsageError("the host name typed does not match; nothing was changed")


def print_uninstall(report: UninstallReport) -> None:
    """What went (or would go), what stayed, and how long it took."""
    plan, verb = report.plan, "would remove" if report.dry_run else "removed"
    print(f"\n== {report.host}")
    for unit in plan.units:
        state = report.states.get(unit) or "unknown"
        print(f"   unit: would stop and disable {unit} ({state})" if report.dry_run else
              f"   unit: stopped and disabled {unit} (was {state})")
    for what, paths in plan.groups:
        for path in paths:
            print(f"   {what}: {verb} {path}")
    for user in plan.users:
        print(f"   service user: {verb} {user} and its home")
    if plan.packages:
        purged = " ".join(report.purged) if not report.dry_run else " ".join(plan.packages)
        print(f"   packages: {'would purge' if report.dry_run else 'purged'} {purged or 'none'}"
              + (" (unless other software needs them)" if report.dry_run else ""))
        if report.needed:
            print(f"   kept: packages {' '.join(report.needed)}: other software needs them")
    for line in plan.kept:
        print(f"   kept: {line}")
    if report.dry_run and plan.live:
        print(f"   LIVE: {', '.join(plan.live)} trades live (or its mode does not read): the "
              "uninstall asks you to type the host name, or takes --yes-live")
    if plan.empty:
        print("   nothing of ibkr-ops is on this host")
    print(f"   {'dry run: nothing changed' if report.dry_run else 'done'}; "
          f"{report.seconds:.1f} s")


@task(help={
    "host": HOST_HELP,
    "keep_settings": f"keep {DEFAULT.config_dir} (credentials, settings, backups) and the "
                     "Gateway's own settings, so a later install picks up where this one left",
    "purge": "also delete the service user (with its home) and the packages the install "
             "added, unless other software needs them",
    "dry_run": "list the units and paths that would go; change nothing",
    "yes_live": "confirm uninstalling a LIVE Gateway without a terminal (scripts, CI)",
    "trust_new_host": "accept and record an unknown SSH host key (never a changed one)"})
def uninstall(c: Context, host: str | None = None, keep_settings: bool = False,
              purge: bool = False, dry_run: bool = False, yes_live: bool = False,
              trust_new_host: bool = False) -> None:
    """Remove everything ibkr-ops installed on a host (the user and packages with --purge)."""
    with user_errors():
        if not host:
            raise UsageError("--host is required")
        if keep_settings and purge:
            raise UsageError("--keep-settings keeps the Gateway's settings in the service "
                             "user's home, which --purge deletes with the user; give one")
        options = UninstallOptions(keep_settings=keep_settings, purge=purge, dry_run=dry_run,
                                   extra_units=_DEMO_UNITS, extra_paths=_DEMO_PATHS)
        ask = input if sys.stdin.isatty() else None
        with connected(host, trust_new_host) as target:
            report = uninstall_on(target, options, progress_for(host), lambda plan: confirm_live(
                host, plan, yes_live=yes_live, ask=ask))
        print_uninstall(report)

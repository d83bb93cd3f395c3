"""`invoke sandbox.*`: real systemd hosts on this machine, for trying the stack and for tests."""

from __future__ import annotations

import json
import os

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from ibkr_ops import sandbox
from ibkr_ops.tasks.common import user_errors


@task(help={
    "name": "guest name (default sbx1); with --count, the prefix of NAME1..NAMEn",
    "count": "how many guests to bring up (default 1)",
})
def up(c: Context, name: str | None = None, count: int = 1) -> None:
    """Start sandbox guests (builds the cached base tree on first use)."""
    with user_errors():
        started = sandbox.up(sandbox.names_for(name, count))
    for guest in started:
        print(f"{guest.name}  {guest.user}@{guest.host}  {guest.state}")
    print(f"connect: ssh -F {sandbox.ssh_config_path()} NAME")


@task(help={"name": "the guest to remove (default: every guest)"})
def down(c: Context, name: str | None = None) -> None:
    """Stop and remove sandbox guests; the cached base tree stays."""
    with user_errors():
        sandbox.down(name)


@task(name="list", help={"json": "print a JSON list of objects instead of a table"})
def list_(c: Context, json_: bool = False) -> None:
    """Show sandbox guests: name, address, state and SSH files."""
    with user_errors():
        found = sandbox.guests()
    if json_:
        print(json.dumps([guest.as_dict() for guest in found], indent=2))
        return
    if not found:
        print("no sandbox guests; start one with `invoke sandbox.up`")
    for guest in found:
        print(f"{guest.name:<12} {guest.host:<14} {guest.state:<10} ssh -F {guest.ssh_config} "
              f"{guest.name}")


@task(help={"name": "the guest to reboot"})
def reboot(c: Context, name: str) -> None:
    """Reboot a guest from inside and wait until it is back."""
    with user_errors():
        sandbox.reboot(name)


@task(help={"name": "the guest to log in to"})
def ssh(c: Context, name: str) -> None:
    """Open an interactive SSH session on a guest."""
    with user_errors():
        sandbox.require(name)
    os.execvp("ssh", ["ssh", "-F", sandbox.ssh_config_path(), name])  # noqa: S606


ns = Collection("sandbox", up, down, list_, reboot, ssh)

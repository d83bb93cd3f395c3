"""`invoke sandbox.*`: real systemd hosts on this machine, for trying the stack and for tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops import sandbox
from ibkr_ops.errors import OpsError

F = TypeVar("F", bound=Callable[..., Any])


def _reported(body: F) -> F:
    """Turn an OpsError into one line and its exit code instead of a traceback."""

    @wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except OpsError as error:
            raise Exit(str(error), code=error.exit_code) from None

    return wrapper  # type: ignore[return-value]


@task(help={
    "name": "guest name (default sbx1); with --count, the prefix of NAME1..NAMEn",
    "count": "how many guests to bring up (default 1)",
})
@_reported
def up(c: Context, name: str | None = None, count: int = 1) -> None:
    """Start sandbox guests (builds the cached base tree on first use)."""
    for guest in sandbox.up(sandbox.names_for(name, count)):
        print(f"{guest.name}  {guest.user}@{guest.host}  {guest.state}")
    print(f"connect: ssh -F {sandbox.ssh_config_path()} NAME")


@task(help={"name": "the guest to remove (default: every guest)"})
@_reported
def down(c: Context, name: str | None = None) -> None:
    """Stop and remove sandbox guests; the cached base tree stays."""
    sandbox.down(name)


@task(name="list", help={"json": "print a JSON list of objects instead of a table"})
@_reported
def list_(c: Context, json_: bool = False) -> None:
    """Show sandbox guests: name, address, state and SSH files."""
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
@_reported
def reboot(c: Context, name: str) -> None:
    """Reboot a guest from inside and wait until it is back."""
    sandbox.reboot(name)


@task(help={"name": "the guest to log in to"})
@_reported
def ssh(c: Context, name: str) -> None:
    """Open an interactive SSH session on a guest."""
    if name not in {guest.name for guest in sandbox.guests()}:
        raise OpsError(f"no sandbox named {name}; start it with `invoke sandbox.up --name {name}`")
    os.execvp("ssh", ["ssh", "-F", sandbox.ssh_config_path(), name])  # noqa: S606


ns = Collection("sandbox", up, down, list_, reboot, ssh)

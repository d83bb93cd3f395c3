"""`invoke verify`: the go-live checklist (tests/verify) against one host."""

from __future__ import annotations

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops import verify as verify_lib
from ibkr_ops.tasks.common import ssh_configs, user_errors
from ibkr_ops.tasks.hosts import HOST_HELP


@task(help={"host": HOST_HELP,
            "destructive": "also restart, kill -9 and reboot the host (items 6, 8, 9)",
            "credentials": "expect this credentials.env's settings (default: the host's own)",
            "junitxml": "also write a JUnit XML report to this file"})
def verify(c: Context, host: str | None = None, destructive: bool = False,
           credentials: str | None = None, junitxml: str | None = None) -> None:
    """Check a host against the go-live checklist; print a pass/fail table."""
    if not host:
        raise Exit("error: --host is required", code=2)
    with user_errors():
        code = verify_lib.run(host, destructive=destructive, junitxml=junitxml,
                              extra=[f"--credentials={credentials}"] if credentials else [],
                              ssh_configs=ssh_configs())
    if code:
        raise Exit(f"error: {host} is not ready to go live (see the table above)", code=code)

"""`invoke verify`: the go-live checklist (`ibkr_ops.checks`, in-process) against one host."""

from __future__ import annotations

from pathlib import Path

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
        report = check_host(host, destructive=destructive,
                            credentials=Path(credentials) if credentials else None)
    if junitxml:
        Path(junitxml).write_bytes(verify_lib.junit_xml(report))
    if not report.ready:
        raise Exit(f"error: {host} is not ready to go live (see the table above)", code=1)


def check_host(host: str, *, destructive: bool = False,
               credentials: Path | None = None) -> verify_lib.Report:
    """Run the checklist with its progress shown, then print the table."""
    print(f"verify {host}: the go-live checklist"
          f"{' with destructive checks' if destructive else ''}", flush=True)
    report = verify_lib.run(host, destructive=destructive, credentials=credentials,
                            ssh_configs=ssh_configs(),
                            say=lambda text: print(f"    {text}", flush=True))
    print(verify_lib.table(report), flush=True)
    return report

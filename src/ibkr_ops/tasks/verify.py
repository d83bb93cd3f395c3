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
            "instance": "check this Gateway instance only (default: every Gateway of the host)",
            "destructive": "also restart, kill -9 and reboot the host (items 6, 8, 9)",
            "credentials": "expect this credentials.env's settings (default: the host's own)",
            "junitxml": "also write a JUnit XML report to this file"})
def verify(c: Context, host: str | None = None, instance: str | None = None,
           destructive: bool = False, credentials: str | None = None,
           junitxml: str | None = None) -> None:
    """Check a host against the go-live checklist; print a pass/fail table per Gateway."""
    if not host:
        raise Exit("error: --host is required", code=2)
    with user_errors():
        reports = check_host(host, instance=instance, destructive=destructive,
                             credentials=Path(credentials) if credentials else None)
    if junitxml:
        Path(junitxml).write_bytes(verify_lib.junit_xml(reports))
    failing = [r.target for r in reports if not r.ready]
    if failing:
        raise Exit(f"error: {', '.join(failing)} not ready to go live (see the table above)",
                   code=1)


def check_host(host: str, *, instance: str | None = None, destructive: bool = False,
               credentials: Path | None = None) -> list[verify_lib.Report]:
    """Run the checklist with its progress shown, then print a table per Gateway."""
    print(f"verify {host}: the go-live checklist"
          f"{' with destructive checks' if destructive else ''}", flush=True)
    reports = verify_lib.run(host, instance=instance, destructive=destructive,
                             credentials=credentials, ssh_configs=ssh_configs(),
                             say=lambda text: print(f"    {text}", flush=True))
    for report in reports:
        print(verify_lib.table(report), flush=True)
    return reports

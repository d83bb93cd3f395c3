"""Output shared by the host tasks: progress lines and the per-host summary."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from ibkr_ops.remote.install import HostReport

_lock = threading.Lock()


def progress_for(host: str) -> Callable[[str], None]:
    """A thread-safe progress printer that names the host and the time since it started."""
    started = time.monotonic()

    def say(message: str) -> None:
        with _lock:
            print(f"[{host}] {time.monotonic() - started:5.1f}s {message}", flush=True)

    return say


def print_report(report: HostReport) -> None:
    """One block per host: each item changed/unchanged, time, health or the error."""
    out = sys.stdout
    width = max((len(name) for name, _ in report.items), default=10)
    with _lock:
        instances = f" (instances {', '.join(report.instances)})" if report.instances else ""
        print(f"\n== {report.host}{instances}", file=out)
        for warning in report.warnings:
            print(f"   warning: {warning}", file=out)
        for name, status in report.items:
            print(f"   {name:<{width}}  {status}", file=out)
        for line in report.diff:
            print("   " + line.rstrip("\n"), file=out)
        if report.error:
            print(f"   FAILED after {report.seconds:.1f} s: {report.error}", file=out)
        else:
            changed = sum(1 for _, s in report.items if s != "unchanged")
            verdict = f"{changed} changed" if changed else "nothing changed, nothing restarted"
            print(f"   {verdict}; {report.seconds:.1f} s; health: {report.health}", file=out)
        out.flush()


def summarize(reports: list[HostReport]) -> str | None:
    """None when every host succeeded, else the one-line failure naming the hosts."""
    failed = [r.host for r in reports if r.error]
    if not failed:
        return None
    return f"failed on {len(failed)} of {len(reports)} host(s): {', '.join(failed)}"

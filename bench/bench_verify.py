"""Go-live checklist figures: crash recovery (kill -9 → healthy), manual restart, reboot to
healthy, and how long the read-only and the full (destructive) suites take.

Run as root: `python bench/bench_verify.py [--runs N]`. A guest is brought up in a scratch
sandbox state directory, installed the way `invoke demo` installs (simulated IBC and
Gateway, in-guest Discord receiver), checked N times each way, and removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ibkr_ops import demo, sandbox, verify
from ibkr_ops.remote.install import install_host
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import load_deployment

GUEST = "vfy-bench"
FIGURES = {"recovery_s": "crash recovery, kill -9 to healthy",
           "restart_s": "manual restart (systemctl restart) to healthy",
           "ssh_back_s": "reboot until SSH answers again",
           "healthy_s": "reboot to healthy"}


def suite(destructive: bool) -> tuple[float, dict[str, float]]:
    """One quiet run of the checklist: (wall seconds, recorded figures); fails loudly."""
    started = time.monotonic()
    (report,) = verify.run(GUEST, destructive=destructive,
                           ssh_configs=(sandbox.ssh_config_path(),))
    elapsed = time.monotonic() - started
    if not report.ready:
        raise SystemExit(f"the checklist failed on {GUEST}; figures not valid\n"
                         f"{verify.table(report)}")
    return elapsed, {name: float(value) for r in report.results for name, value in r.figures
                     if name in FIGURES}


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f} s"
    return (f"median {statistics.median(values):.1f} s, min {min(values):.1f}, "
            f"max {max(values):.1f} ({len(values)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each suite (default 3)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-verify-", dir="/var/tmp"))
    os.environ[STATE_ENV] = str(scratch / "sandbox")
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")  # fresh demo credentials
    try:
        sandbox.up([GUEST])
        d = load_deployment(demo.credentials_file())
        report = install_host(GUEST, d, demo.install_options(None, 180), lambda _: None)
        if report.error:
            raise SystemExit(f"install failed: {report.error}")
        readonly: list[float] = []
        full: list[float] = []
        figures: dict[str, list[float]] = {name: [] for name in FIGURES}
        for run in range(1, args.runs + 1):
            print(f"run {run} of {args.runs} ...", flush=True)
            readonly.append(suite(False)[0])
            seconds, found = suite(True)
            full.append(seconds)
            for name, value in found.items():
                figures[name].append(value)
        for name, label in FIGURES.items():
            print(f"{label}: {summary(figures[name])}")
        print(f"read-only suite (items 0-5, 7, 10, 11): {summary(readonly)}")
        print(f"full suite with --destructive: {summary(full)}")
    finally:
        sandbox.down(GUEST)
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


if __name__ == "__main__":
    main()

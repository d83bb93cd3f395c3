"""Install figures on sandbox guests (needs root): first install, no-change re-run, 4 vs 1 host.

Usage: python bench/bench_install.py   (or nox -s bench -- bench_install)
Guests bnch1..bnch4 live in a private sandbox state directory and are removed at the end.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ibkr_ops import demo, sandbox
from ibkr_ops.remote.install import InstallOptions, install_host
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import Deployment, load_deployment


def timed_install(names: list[str], d: Deployment, options: InstallOptions) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        reports = list(pool.map(lambda n: install_host(n, d, options, lambda _: None), names))
    elapsed = time.perf_counter() - started
    failed = [f"{r.host}: {r.error}" for r in reports if r.error]
    if failed:
        sys.exit("install failed: " + "; ".join(failed))
    return elapsed


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_install needs root (sandbox guests)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[STATE_ENV] = str(Path(tmp) / "sandbox")
        creds = Path(tmp) / "credentials.env"
        creds.write_text("IBKR_USERNAME=bench\nIBKR_PASSWORD=bench-pw-123\n"
                         "IBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN=1030\n")
        creds.chmod(0o600)
        d = load_deployment(creds)
        options = demo.install_options(None, wait_s=120)
        names = [f"bnch{i}" for i in range(1, 5)]
        try:
            sandbox.up(names)
            first = timed_install(names[:1], d, options)
            reruns = [timed_install(names[:1], d, options) for _ in range(5)]
            four = timed_install(names, d, options)
            print(f"first install on one guest:          {first:6.2f} s")
            print(f"no-change re-run (median of 5):      {statistics.median(reruns):6.2f} s"
                  "   (aim: under 5 s)")
            print(f"first install on 4 guests in parallel: {four:6.2f} s = "
                  f"{four / first:.2f}x one guest   (aim: under 1.5x)")
        finally:
            sandbox.down()


if __name__ == "__main__":
    main()

"""Sandbox figures: base tree build (first run), guest start-up from the cache, idle memory.

Run as root: `python bench/bench_sandbox.py` (builds a fresh base tree in a scratch cache,
about 2 minutes and 650 MB while it runs) or `--reuse-cache` to time guests only, against
the cached tree. Guests run in a scratch state directory and are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ibkr_ops import sandbox
from ibkr_ops.sandbox import base, cgroup, records
from ibkr_ops.sandbox.paths import CACHE_ENV, STATE_ENV, layout

T = TypeVar("T")
IDLE_SECONDS = 20


def timed(label: str, action: Callable[[], T]) -> T:
    start = time.monotonic()
    result = action()
    print(f"{label}: {time.monotonic() - start:.1f} s", flush=True)
    return result


def pss_kib(pids: set[int]) -> int:
    """Proportional set size of these processes: shared pages counted once overall."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in rollup.splitlines()
                     if line.startswith("Pss:"))
    return total


def available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reuse-cache", action="store_true",
                        help="time guests against the cached base tree; skip the build")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-sandbox-", dir="/var/tmp"))
    os.environ[STATE_ENV] = str(scratch / "state")
    if not args.reuse_cache:
        os.environ[CACHE_ENV] = str(scratch / "cache")
    try:
        where = layout()
        label = "base tree (cached)" if args.reuse_cache else "base tree build (first run)"
        timed(label, lambda: base.ensure_base(where, guests_exist=False))
        size = subprocess.run(["du", "-sm", str(where.base)], capture_output=True, text=True,
                              check=True).stdout.split()[0]
        print(f"base tree size: {size} MiB", flush=True)
        before = available_kib()
        timed("1 guest up from the cache (boot + SSH)", lambda: sandbox.up(["b1"]))
        names = [f"b{i}" for i in range(2, 6)]
        timed("4 guests up from the cache (boot + SSH)", lambda: sandbox.up(names))
        timed("reboot of 1 guest (until SSH answers)", lambda: sandbox.reboot("b1"))
        time.sleep(IDLE_SECONDS)
        slots = [r.index for r in records.load_all(where)]
        per_guest = [pss_kib(cgroup.pids(slot)) for slot in slots]
        print(f"memory per idle guest (PSS of its processes, after {IDLE_SECONDS} s): "
              f"{sum(per_guest) / len(per_guest) / 1024:.1f} MiB "
              f"(min {min(per_guest) / 1024:.1f}, max {max(per_guest) / 1024:.1f})")
        print(f"host MemAvailable drop per guest: {(before - available_kib()) / 5 / 1024:.1f} MiB")
        timed("5 guests down", sandbox.down)
    finally:
        sandbox.down()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

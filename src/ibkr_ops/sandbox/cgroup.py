"""One cgroup per guest, in every hierarchy nspawn uses.

With `--keep-unit`, nspawn boots the guest in the cgroup it was started from, so two
guests started from the same cgroup collide. On a hybrid hierarchy (cgroup v1 with the
unified v2 tree at /sys/fs/cgroup/unified) nspawn needs the guest's cgroup in both the
`name=systemd` v1 tree and the unified tree. Like network namespaces, cgroups are named
by the guest's slot so that guests of different state directories never share one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox.paths import RESOURCE_PREFIX

MOUNTS = Path("/proc/self/mounts")


def hierarchies(mounts: str) -> list[Path]:
    """The cgroup trees a guest needs a directory in, read from /proc/self/mounts text."""
    unified: list[Path] = []
    named_systemd: list[Path] = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        where, fstype, options = Path(fields[1]), fields[2], fields[3].split(",")
        if fstype == "cgroup2":
            unified.append(where)
        elif fstype == "cgroup" and "name=systemd" in options:
            named_systemd.append(where)
    found = unified[:1] + named_systemd[:1]
    if not found:
        raise OpsError("no cgroup hierarchy is mounted under /sys/fs/cgroup; mount cgroup2 there")
    return found


def paths(slot: int) -> list[Path]:
    """The guest's cgroup directory in each hierarchy."""
    return [root / f"{RESOURCE_PREFIX}{slot}" for root in hierarchies(MOUNTS.read_text())]


def create(slot: int) -> None:
    for path in paths(slot):
        path.mkdir(exist_ok=True)


def enter(slot: int) -> None:
    """Move the calling process into the guest's cgroups (nspawn then inherits them)."""
    for path in paths(slot):
        (path / "cgroup.procs").write_text(f"{os.getpid()}\n")


def pids(slot: int) -> set[int]:
    """Every process left anywhere in the guest's cgroups."""
    found: set[int] = set()
    for path in paths(slot):
        for procs in path.rglob("cgroup.procs") if path.exists() else ():
            try:
                found.update(int(pid) for pid in procs.read_text().split())
            except OSError:
                continue
    return found


def kill_all(slot: int, *, timeout: float = 10) -> None:
    """SIGKILL whatever is left in the guest's cgroups and wait until they are empty."""
    deadline = time.monotonic() + timeout
    while left := pids(slot):
        if time.monotonic() > deadline:
            raise OpsError(f"processes {sorted(left)} in sandbox cgroup {slot} would not die")
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove(slot: int) -> None:
    """Remove the guest's (empty) cgroup trees, innermost first."""
    for path in paths(slot):
        if not path.exists():
            continue
        for sub in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                sub.rmdir()
        path.rmdir()

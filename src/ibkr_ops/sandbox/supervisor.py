"""Keeps one guest's systemd-nspawn alive across reboots: `python -m ibkr_ops.sandbox.supervisor NAME`.

nspawn exits with status 133 when the guest reboots; starting it again (as
systemd-nspawn@.service does with RestartForceExitStatus=133) makes `systemctl reboot`
inside a guest a real reboot. Any other exit, or SIGTERM to this process, ends it.
Its output, and nspawn's console, go to the guest's console.log.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from ibkr_ops.sandbox import cgroup, network
from ibkr_ops.sandbox.paths import Layout, check_name, layout
from ibkr_ops.sandbox.records import GuestRecord, load

REBOOT_STATUS = 133
LOG_PREFIX = "[supervisor "


def nspawn_argv(where: Layout, record: GuestRecord) -> list[str]:
    """The nspawn command line; see the module docstring of `cgroup` for --keep-unit."""
    return [
        "systemd-nspawn", "-D", str(where.guest(record.name).root), "-M", record.name,
        "--register=no", "--keep-unit", "--console=pipe",
        f"--network-namespace-path={network.netns_path(record.index)}", "--boot",
    ]


def _log(message: str) -> None:
    print(f"{LOG_PREFIX}{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}", flush=True)


def supervise(where: Layout, record: GuestRecord) -> int:
    """Run nspawn until the guest powers off or this process is told to stop."""
    files = where.guest(record.name)
    cgroup.enter(record.index)
    stopping = False
    current: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if current is not None and current.poll() is None:
            current.send_signal(signal.SIGTERM)  # nspawn shuts the guest down in order

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    while True:
        _log("starting the guest")
        current = subprocess.Popen(nspawn_argv(where, record), stdin=subprocess.DEVNULL)
        files.nspawn_pid.write_text(f"{current.pid}\n")
        code = current.wait()
        _log(f"systemd-nspawn exited with status {code}")
        if code != REBOOT_STATUS or stopping:
            break
        _log("the guest rebooted")
    files.nspawn_pid.unlink(missing_ok=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ibkr_ops.sandbox.supervisor NAME", file=sys.stderr)
        return 2
    where = layout()
    record = load(where, check_name(args[0]))
    if record is None:
        print(f"no sandbox record for {args[0]} under {where.state}", file=sys.stderr)
        return 1
    return supervise(where, record)


if __name__ == "__main__":
    sys.exit(main())

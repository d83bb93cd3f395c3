"""Figures of the real-IBC path (issue 16), printed as one block.

1. Real IBC login to API ready: the real IBC 3.24.1 zip's ibcstart.sh started (real JVM, IBC's
   Java code, the Gateway stand-in, paper, a fresh settings directory each round) -> ib_async
   connects to the port IBC set. Median of --rounds.
2. Warm restart through IBC's command server to healthy: RESTART sent -> ib_async connects to
   the relaunched JVM. With restart_delay=0 (the stand-in restarts as soon as IBC has set its
   auto-restart to the next minute: IBC's and the relaunch's share), and once as IBC really
   schedules it (at the next whole minute).
3. The sandbox base tree with Debian's JRE: build time and size on disk (root, network;
   a temporary cache, removed after). --no-base-tree skips it.

Needs IBKR_OPS_IBC_ZIP (or ../shared/third-party/ibc), Xvfb and a JDK.
Run: .venv/bin/python bench/bench_real_ibc.py [--rounds N] [--no-base-tree]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import stat
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from bench_sim import free_port, ibc_zip, send_command, sim_env, start_xvfb, until_connected

from ibkr_ops.sandbox import base
from ibkr_ops.sandbox.paths import Layout
from ibkr_ops.sim import artifacts


class Stack:
    """The stand-in installed in a temporary tree and the real IBC beside it."""

    def __init__(self, work: Path, installer: str, zip_path: Path) -> None:
        self.root = work
        self.tws = work / "Jts"
        subprocess.run([installer, "-q", "-dir", str(self.tws / "ibgateway" / "1030")],
                       check=True, capture_output=True)
        self.ibc = work / "ibc"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(self.ibc)
        for script in [*self.ibc.glob("*.sh"), *self.ibc.glob("scripts/*.sh")]:
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        self.api, self.command = free_port(), free_port()
        self.ini = work / "config.ini"
        self.ini.write_text(f"IbLoginId=bench\nIbPassword=pw-bench\nTradingMode=paper\n"
                            f"OverrideTwsApiPort={self.api}\nCommandServerPort={self.command}\n"
                            # as rendered: every start puts the auto-restart back here
                            "BindAddress=127.0.0.1\nAutoRestartTime=11:59 PM\n")

    def start(self, display: str, **knobs: str) -> subprocess.Popen[bytes]:
        env = sim_env() | {"DISPLAY": display, "HOME": str(self.root)} | {
            f"IBKR_GATEWAY_SIM_{k.upper()}": v for k, v in knobs.items()}
        return subprocess.Popen([str(self.ibc / "scripts" / "ibcstart.sh"), "1030", "-g",
                                 f"--tws-path={self.tws}", f"--tws-settings-path={self.tws}",
                                 f"--ibc-path={self.ibc}", f"--ibc-ini={self.ini}",
                                 "--mode=paper", "--on2fatimeout=exit"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def login_to_api(rounds: int, work: Path, installer: str, zip_path: Path,
                 display: str) -> list[float]:
    times = []
    for i in range(rounds):
        stack = Stack(work / f"login{i}", installer, zip_path)
        started = time.monotonic()
        proc = stack.start(display)
        try:
            times.append(asyncio.run(until_connected(stack.api, 1, started + 60)) - started)
        finally:
            stop(proc)
    return times


def warm_restarts(rounds: int, work: Path, installer: str, zip_path: Path, display: str,
                  delay: str | None) -> list[float]:
    stack = Stack(work / f"restart-{delay}", installer, zip_path)
    knobs = {} if delay is None else {"restart_delay": delay}
    proc = stack.start(display, **knobs)
    times = []
    try:
        asyncio.run(until_connected(stack.api, 1, time.monotonic() + 60))
        for _ in range(rounds):
            # IBC's own configuration tasks run just after the login: a RESTART that meets
            # them is lost (and IBC then answers "RESTART already in progress" until the
            # next JVM). A daily restart never comes this early.
            time.sleep(3)
            sent = time.monotonic()
            send_command(stack.command, "RESTART")
            java = _java_pid(stack.ini)
            while _java_pid(stack.ini) == java and time.monotonic() < sent + 90:
                time.sleep(0.05)
            times.append(asyncio.run(until_connected(stack.api, 1, sent + 150)) - sent)
    finally:
        stop(proc)
    return times


def _java_pid(ini: Path) -> str:
    return subprocess.run(["pgrep", "-f", f"java.*{ini}"], capture_output=True, text=True,
                          check=False).stdout.strip()


def base_tree() -> str:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        return "skipped: needs root and debootstrap"
    with tempfile.TemporaryDirectory(prefix="bench-base-", dir="/var/tmp") as tmp:
        layout = Layout(cache=Path(tmp) / "cache", state=Path(tmp) / "state")
        started = time.monotonic()
        tree = base.ensure_base(layout, guests_exist=False)
        took = time.monotonic() - started
        size = subprocess.run(["du", "-sm", str(tree)], capture_output=True, text=True,
                              check=True).stdout.split()[0]
        jre = any((tree / "usr/lib/jvm").glob("java-17-openjdk-*/lib/libawt_xawt.so"))
    return f"built in {took:.0f} s, {size} MB on disk (JRE with AWT: {'yes' if jre else 'NO'})"


def describe(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"median {statistics.median(values):.2f} s (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of timed figures")
    parser.add_argument("--no-base-tree", action="store_true", help="skip the base tree build")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # ib_async logs every failed connect attempt
    zip_path, kind = ibc_zip()
    print(f"real IBC path ({kind}, Gateway stand-in on this machine's JVM)")
    if not zip_path.name:
        print("  skipped: no real IBC zip (set IBKR_OPS_IBC_ZIP)")
        return
    xvfb, display = start_xvfb()
    if xvfb is None:
        print("  skipped: Xvfb is not installed")
        return
    try:
        with tempfile.TemporaryDirectory(prefix="bench-real-ibc-") as tmp:
            work = Path(tmp)
            installer = artifacts.write_all(work / "artifacts")["installer"]
            login = login_to_api(args.rounds, work, installer, zip_path, display)
            fast = warm_restarts(args.rounds, work, installer, zip_path, display, "0")
            real = warm_restarts(1, work, installer, zip_path, display, None)
    finally:
        xvfb.terminate()
        xvfb.wait(5)
    print(f"  login (ibcstart.sh -> ib_async connects): {describe(login)}")
    print(f"  warm restart, RESTART -> ib_async connects, restart_delay 0: {describe(fast)}")
    print(f"  warm restart, RESTART -> ib_async connects, at IBC's next minute: {describe(real)}")
    if not args.no_base_tree:
        print(f"  sandbox base tree with openjdk-17-jre: {base_tree()}")


if __name__ == "__main__":
    main()

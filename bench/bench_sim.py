"""Figures of the gateway simulator (issue 9), printed as one block.

1. Process start -> first successful ib_async connect (login delay 0, second factor off).
2. Connects per second sustained by 20 concurrent ib_async clients (connect with its start-up
   requests, reqCurrentTime, disconnect; unique clientIds).
3. Warm restart under IBC's ibcstart.sh (the real zip from IBKR_OPS_IBC_ZIP or
   ../shared/third-party/ibc, else the simulated zip): command-server RESTART sent -> API
   answering ib_async again. The simulator's restart delay is 0 here; real IBC schedules the
   restart for the next whole minute, which adds up to 60 s.

Run: .venv/bin/python bench/bench_sim.py [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ib_async import IB

from ibkr_ops.sim import artifacts

REPO = Path(__file__).resolve().parent.parent
X11_SOCKETS = Path("/tmp/.X11-unix")  # noqa: S108 - the X server's fixed socket directory
SHARED_IBC = REPO.parent / "shared" / "third-party" / "ibc" / "IBCLinux-3.24.1.zip"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sim_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}


async def try_connect(port: int, client_id: int, timeout: float = 2) -> bool:
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=timeout)
    except (OSError, TimeoutError, ConnectionError):
        return False
    ok = ib.isConnected()
    ib.disconnect()
    return ok


async def until_connected(port: int, client_id: int, deadline: float) -> float:
    while time.monotonic() < deadline:
        if await try_connect(port, client_id):
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise TimeoutError("the API did not answer")


def start_sim(port: int, settings: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ibkr_ops.sim", "--port", str(port),
                             "--headless", "--second-factor", "off", "--settings-dir",
                             str(settings)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=sim_env())


def startup_to_connect(rounds: int, work: Path) -> list[float]:
    times = []
    for i in range(rounds):
        port = free_port()
        started = time.monotonic()
        proc = start_sim(port, work / f"startup{i}")
        try:
            connected = asyncio.run(until_connected(port, 1, started + 30))
            times.append(connected - started)
        finally:
            proc.terminate()
            proc.wait(10)
    return times


async def _worker(port: int, client_id: int, stop: float, counts: list[int]) -> None:
    while time.monotonic() < stop:
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=10)
        await ib.reqCurrentTimeAsync()
        ib.disconnect()
        counts[0] += 1
        await asyncio.sleep(0)


def connects_per_second(seconds: float, work: Path, clients: int = 20) -> float:
    port = free_port()
    proc = start_sim(port, work / "throughput")
    try:
        asyncio.run(until_connected(port, 999, time.monotonic() + 30))
        counts = [0]

        async def run() -> float:
            started = time.monotonic()
            await asyncio.gather(*(_worker(port, 1 + i, started + seconds, counts)
                                   for i in range(clients)))
            return time.monotonic() - started

        elapsed = asyncio.run(run())
        return counts[0] / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def ibc_zip() -> tuple[Path, str]:
    configured = os.environ.get("IBKR_OPS_IBC_ZIP", "")
    if configured and Path(configured).is_file():
        return Path(configured), "real IBC 3.24.1 (IBKR_OPS_IBC_ZIP)"
    if SHARED_IBC.is_file():
        return SHARED_IBC, "real IBC 3.24.1 (../shared)"
    return Path(), "simulated IBC zip"


def start_xvfb() -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("Xvfb")
    if binary is None:
        return None, ""
    for number in range(150, 199):
        if not (X11_SOCKETS / f"X{number}").exists():
            break
    proc = subprocess.Popen([binary, f":{number}", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (X11_SOCKETS / f"X{number}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, f":{number}"


def send_command(port: int, command: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(command.encode() + b"\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.decode()


def warm_restart(rounds: int, work: Path) -> tuple[list[float], str]:
    xvfb, display = start_xvfb()
    if xvfb is None:
        return [], "skipped: Xvfb is not installed"
    zip_path, zip_kind = ibc_zip()
    root = work / "stack"
    written = artifacts.write_all(work / "artifacts")
    if not zip_path.name:
        zip_path = Path(written["ibc_zip"])
    tws = root / "Jts"
    subprocess.run([written["installer"], "-q", "-dir", str(tws / "ibgateway" / "1030")],
                   check=True, capture_output=True)
    ibc = root / "ibc"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(ibc)
    for script in [*ibc.glob("*.sh"), *ibc.glob("scripts/*.sh")]:
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    api, command = free_port(), free_port()
    ini = root / "config.ini"
    ini.write_text(f"IbLoginId=bench\nIbPassword=pw\nTradingMode=paper\n"
                   f"OverrideTwsApiPort={api}\nCommandServerPort={command}\n")
    env = sim_env() | {"DISPLAY": display, "IBKR_GATEWAY_SIM_RESTART_DELAY": "0",
                       "IBKR_GATEWAY_SIM_SECOND_FACTOR_DELAY": "0"}
    proc = subprocess.Popen([str(ibc / "scripts" / "ibcstart.sh"), "1030", "-g",
                             f"--tws-path={tws}", f"--tws-settings-path={tws}",
                             f"--ibc-path={ibc}", f"--ibc-ini={ini}", "--mode=paper",
                             "--on2fatimeout=exit"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    times = []
    try:
        asyncio.run(until_connected(api, 1, time.monotonic() + 30))
        for _ in range(rounds):
            sent = time.monotonic()
            send_command(command, "RESTART")
            # wait for the API to go away, then to answer again
            while _port_open(api) and time.monotonic() < sent + 10:
                time.sleep(0.005)
            back = asyncio.run(until_connected(api, 1, sent + 60))
            times.append(back - sent)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        xvfb.terminate()
        xvfb.wait(5)
    return times, zip_kind


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def describe(values: list[float], unit: str, scale: float = 1.0) -> str:
    if not values:
        return "n/a"
    scaled = [v * scale for v in values]
    return (f"median {statistics.median(scaled):.0f} {unit} (min {min(scaled):.0f}, "
            f"max {max(scaled):.0f}, n={len(scaled)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of timed figures")
    parser.add_argument("--seconds", type=float, default=10, help="throughput run length")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # ib_async logs every failed connect attempt
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        work = Path(tmp)
        startup = startup_to_connect(args.rounds, work)
        rate = connects_per_second(args.seconds, work)
        restarts, kind = warm_restart(args.rounds, work)
    print("gateway simulator (ibkr-gateway-sim)")
    print(f"  start -> first ib_async connect (login delay 0): {describe(startup, 'ms', 1000)}")
    print(f"  connects/s, 20 concurrent ib_async clients ({args.seconds:g} s): {rate:.0f}")
    print(f"  warm restart under ibcstart.sh, RESTART -> API answers ({kind}, restart delay 0): "
          f"{describe(restarts, 'ms', 1000)}")


if __name__ == "__main__":
    main()

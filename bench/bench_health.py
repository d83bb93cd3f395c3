"""Figures of the health check (issue 4), printed as one block.

Median wall time of one `ibkr-health-check` run against a healthy simulator, process start
included, run the way a host runs it (the shipped shim, the shipped zip, the system
python3; and, for comparison, the same package extracted with compiled bytecode, since
zipimport recompiles a zip of sources on every start), side by side in the same run with:
  (a) `nc -z` on the port, which only sees the port;
  (b) a probe written the way a user would with ib_async: `IB().connect()` +
      `reqCurrentTime()`, also as a fresh process.
Also the import time of the health module and of the command-line module (`-X importtime`).

Run: .venv/bin/python bench/bench_health.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ibkr_ops import resources
from ibkr_ops.remote.artifacts import tools_zip

SHIM = resources.scripts() / "ibkr-health-check"
IB_ASYNC_PROBE = """
import sys
from ib_async import IB
ib = IB()
ib.connect("127.0.0.1", int(sys.argv[1]), clientId=77, timeout=10)
ib.reqCurrentTime()
ib.disconnect()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_api(port: int, timeout: float = 30) -> None:
    """Until the simulator's API logs in (print progress: this can take seconds)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if subprocess.run([sys.executable, str(SHIM), "--port", str(port)],
                          capture_output=True, check=False).returncode == 0:
            return
        print(f"  waiting for the simulator's API: {time.monotonic() - start:.0f} s", flush=True)
        time.sleep(0.5)
    raise SystemExit("the simulator did not come up")


def timed(command: list[str], rounds: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall times in ms of `rounds` runs; every run must succeed."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, check=False, env=env)
        times.append((time.perf_counter() - start) * 1000)
        if result.returncode != 0:
            raise SystemExit(f"{command[:3]} failed: {result.stderr.decode()[-300:]}")
    return times


def import_ms(python: str, zip_path: Path, module: str) -> float:
    """Cumulative import time of `module` (ms, median of 5) from the shipped zip."""
    samples = []
    for _ in range(5):
        err = subprocess.run(
            [python, "-X", "importtime", "-c",
             f"import sys; sys.path.insert(0, {str(zip_path)!r}); import {module}"],
            capture_output=True, text=True, check=True).stderr
        match = re.search(rf"\|\s*(\d+)\s*\|\s*{re.escape(module)}\s*$", err, re.MULTILINE)
        if match is None:
            raise SystemExit(f"no import time line for {module}")
        samples.append(int(match[1]) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs per probe (default 21)")
    args = parser.parse_args()
    python = shutil.which("python3", path="/usr/bin") or sys.executable
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "ibkr_ops.zip"
        zip_path.write_bytes(tools_zip())
        shim = Path(tmp) / "ibkr-health-check"
        shim.write_text(SHIM.read_text().replace("/usr/local/lib/ibkr-ops/ibkr_ops.zip",
                                                 str(zip_path)))
        extracted = Path(tmp) / "lib"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(extracted)
        subprocess.run([python, "-m", "compileall", "-q", str(extracted)], check=True)
        # The shim finds no zip at its path and falls back to the normal import (PYTHONPATH).
        dir_shim = Path(tmp) / "ibkr-health-check-dir"
        dir_shim.write_text(SHIM.read_text().replace("/usr/local/lib/ibkr-ops/ibkr_ops.zip",
                                                     str(Path(tmp) / "absent.zip")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
        sim = subprocess.Popen([sys.executable, "-m", "ibkr_ops.sim", "--port", str(port),
                                "--headless", "--second-factor", "off",
                                "--settings-dir", str(Path(tmp) / "sim")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_api(port)
            health = timed([python, str(shim), "--port", str(port)], args.rounds)
            health_dir = timed([python, str(dir_shim), "--port", str(port)], args.rounds,
                               env={**env, "PYTHONPATH": str(extracted)})
            nc = (timed(["nc", "-z", "127.0.0.1", str(port)], args.rounds)
                  if shutil.which("nc") else None)
            ib_async = timed([sys.executable, "-c", IB_ASYNC_PROBE, str(port)], args.rounds)
            bare = timed([python, "-c", "pass"], args.rounds)
            health_import = import_ms(python, zip_path, "ibkr_ops.host.health")
            cli_import = import_ms(python, zip_path, "ibkr_ops.host.cli")
        finally:
            sim.terminate()
            sim.wait(10)
    med = statistics.median
    print(f"health check figures ({args.rounds} runs each, median wall time, process start "
          f"included; {python} {sys.version.split()[0]})")
    print(f"  ibkr-health-check (shim + shipped zip): {med(health):7.1f} ms")
    print(f"  ibkr-health-check (extracted, .pyc):    {med(health_dir):7.1f} ms")
    if nc is not None:
        print(f"  nc -z (port only):                      {med(nc):7.1f} ms"
              f"   health check / nc = {med(health) / med(nc):.1f}x")
    else:
        print("  nc -z: not installed (apt-get install netcat-openbsd)")
    print(f"  ib_async connect + reqCurrentTime:      {med(ib_async):7.1f} ms"
          f"   health check / ib_async = {med(health) / med(ib_async):.2f}x")
    print(f"  python3 -c pass (interpreter start):    {med(bare):7.1f} ms")
    print(f"  import from the zip: ibkr_ops.host.health {health_import:.1f} ms, "
          f"ibkr_ops.host.cli {cli_import:.1f} ms (-X importtime, cumulative)")
    print("  (off systemd the process layer scans /proc/*/fd for the port's owner; on a "
          "systemd host it reads the unit's cgroup instead)")


if __name__ == "__main__":
    main()

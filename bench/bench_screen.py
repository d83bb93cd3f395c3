"""Screen figures on a sandbox guest (needs root): `invoke screenshot` and `invoke vnc`.

Usage: python bench/bench_screen.py   (or nox -s bench -- bench_screen)
Prints the screenshot's time and PNG size, and the time from `invoke vnc` to a listening
server and to a first frame in a real viewer (vncdotool). Guest bnchs1 lives in a private
sandbox state directory and is removed at the end.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ibkr_ops import demo, sandbox
from ibkr_ops.remote import screen, vnc
from ibkr_ops.remote.install import install_host
from ibkr_ops.remote.switch import open_root
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import load_deployment

CLIENT = Path(__file__).resolve().parents[1] / "tests" / "integration" / "vnc_client.py"


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_screen needs root (sandbox guests)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[STATE_ENV] = str(Path(tmp) / "sandbox")
        creds = Path(tmp) / "credentials.env"
        creds.write_text("IBKR_USERNAME=bench\nIBKR_PASSWORD=bench-pw-123\n"
                         "IBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN=1030\n")
        creds.chmod(0o600)
        try:
            (guest,) = sandbox.up(["bnchs1"])
            report = install_host(guest.name, load_deployment(creds),
                                  demo.install_options(None, wait_s=120), lambda _: None)
            if report.error:
                sys.exit(f"install failed: {report.error}")
            host = open_root(guest.name)
            host.root("systemd-run --quiet --property=User=trader --setenv=DISPLAY=:1 "
                      "/usr/bin/xmessage -geometry +400+300 -title 'Second Factor "
                      "Authentication' 'Approve this login'")
            time.sleep(1)
            shots, size = [], 0
            for _ in range(5):
                started = time.perf_counter()
                shot = screen.take(host)
                shots.append(time.perf_counter() - started)
                size = len(shot.png)
            host.conn.close()
            starts, frames = [], []
            for _ in range(3):
                started = time.perf_counter()
                with vnc.session(guest.name, interactive=False, max_s=120) as s:
                    starts.append(time.perf_counter() - started)
                    subprocess.run([sys.executable, str(CLIENT), s.address,
                                    str(Path(tmp) / "frame.png")], input=s.password + "\n",
                                   capture_output=True, text=True, timeout=60, check=True)
                    frames.append(time.perf_counter() - started)
            print(f"invoke screenshot (1280x1024, one dialog), median of 5: "
                  f"{statistics.median(shots):5.2f} s, PNG {size / 1024:.0f} KiB")
            print(f"invoke vnc: server listening and tunnel up, median of 3: "
                  f"{statistics.median(starts):5.2f} s")
            print(f"invoke vnc: first frame in a real viewer, median of 3:   "
                  f"{statistics.median(frames):5.2f} s")
        finally:
            sandbox.down()


if __name__ == "__main__":
    main()

"""Self-healing figures with the default settings (a check every 60 s, restart after 3 failed
checks): hung API from the first failed check to healthy again, crash (kill -9) to healthy,
and the notifications each incident sent.

Run as root: `python bench/bench_heal.py [--rounds N]`. One guest in a scratch sandbox state
directory (booting from the cached base tree), installed with the simulated Gateway, whose
control port injects the hang into the running process; removed at the end. The warm restart
waits for the next minute, as IBC's RESTART does. A hang round takes about four minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ibkr_ops import demo, sandbox
from ibkr_ops.remote import switch
from ibkr_ops.remote.install import install_host
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import parse_deployment
from ibkr_ops.sim import artifacts as sim_artifacts

GUEST = "bheal"
CONTROL_PORT = 7499
SIM_PROPERTIES = f"/home/trader/Jts/ibgateway/{sim_artifacts.TWS_MAJOR_VRSN}/sim.properties"


def quiet(_message: str) -> None:
    """Progress lines are dropped: only the figures are printed."""


def run(command: str) -> str:
    host = switch.open_root(GUEST, ssh_configs=(sandbox.ssh_config_path(),))
    try:
        return str(host.root(command, warn=True).stdout)
    finally:
        host.conn.close()


def messages() -> list[tuple[float, str, str]]:
    """(time, title, first line) of every notification the guest's receiver got."""
    found = json.loads(run(f"curl -s http://127.0.0.1:{demo.DISCORD_PORT}/_sim/messages"))
    out = []
    for message in found:
        embed = message["embeds"][0]
        at = dt.datetime.fromisoformat(message["timestamp"]).timestamp()
        out.append((at, embed["title"], embed["description"].splitlines()[0]))
    return out


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def healthy() -> bool:
    out = run("/usr/local/bin/ibkr-health-check --json")
    return bool(out) and bool(json.loads(out).get("healthy"))


def hang_round() -> tuple[float, float, int]:
    """(first failed check to healthy, fault to healthy, notifications) of one hung API."""
    start = len(messages())
    guest_now = float(run("date +%s.%N"))
    script = (f"import socket; s = socket.create_connection(('127.0.0.1', {CONTROL_PORT}), 5); "
              "s.sendall(b'FAULT hang\\n'); print(s.recv(200).decode())")
    run(f"python3 -c {shlex.quote(script)}")
    wait(lambda: any("healthy again" in m[2] for m in messages()[start:]), 600,
         "the recovery notification")
    incident = messages()[start:]
    failed = next(at for at, title, _ in incident if title.startswith("ERROR"))
    back = next(at for at, _, text in incident if "healthy again" in text)
    time.sleep(70)  # one more check: nothing else may follow
    return back - failed, back - guest_now, len(messages()) - start


def crash_round() -> tuple[float, int]:
    """(kill -9 to healthy, notifications after one more check) of one crash."""
    start = len(messages())
    pid = run("systemctl show -p MainPID --value ibkr-gateway.service").strip()
    java = run(f"pgrep -P {pid} -f IbcGateway").split()[0]
    began = time.monotonic()
    run(f"kill -9 {java}")
    wait(lambda: not healthy(), 30, "the crash to show")
    wait(healthy, 120, "a healthy Gateway after the crash")
    seconds = time.monotonic() - began
    time.sleep(75)  # the next check reports the crash systemd healed
    return seconds, len(messages()) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each kind (default 2)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-heal-", dir="/var/tmp"))
    os.environ[STATE_ENV] = str(scratch / "state")
    try:
        sandbox.up([GUEST])
        d = parse_deployment(
            f"IBKR_USERNAME=bench_heal\nIBKR_PASSWORD=pw-{secrets.token_urlsafe(12)}\n"
            f"IBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN={sim_artifacts.TWS_MAJOR_VRSN}\n"
            f"DISCORD_WEBHOOK_URL={demo.DISCORD_URL}\n", source="bench")
        result = install_host(GUEST, d, demo.install_options(None, 120), quiet)
        if result.error:
            raise SystemExit(f"install failed: {result.error}")
        run(f"printf 'control_port={CONTROL_PORT}\\nsecond_factor=off\\n' >> {SIM_PROPERTIES}"
            " && systemctl restart ibkr-gateway.service")
        wait(healthy, 60, "a healthy Gateway")
        hangs = [hang_round() for _ in range(args.rounds)]
        crashes = [crash_round() for _ in range(args.rounds)]
        print("hung API, first failed check to healthy (default settings: 60 s checks, restart "
              f"after 3): median {statistics.median(h[0] for h in hangs):.0f} s "
              f"(fault to healthy {statistics.median(h[1] for h in hangs):.0f} s, "
              f"n={len(hangs)})")
        print(f"notifications per hung-API incident: {[h[2] for h in hangs]}")
        print(f"crash (kill -9 of the JVM) to healthy: median "
              f"{statistics.median(c[0] for c in crashes):.1f} s (n={len(crashes)})")
        print(f"notifications per crash incident: {[c[1] for c in crashes]}")
    finally:
        sandbox.down()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

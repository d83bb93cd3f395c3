"""Self-healing figures with the default settings (a check every 30 s, restart after 3 failed
probes): a frozen JVM (kill -STOP: the port accepts TCP, the API and IBC's command server say
nothing), a hung API whose JVM still runs (the simulator's hang fault), and a crash (kill -9),
each from the fault to healthy again, with the notifications each incident sent.

Run as root: `python bench/bench_heal.py [--rounds N] [--kinds frozen,hung,crash]`. One guest
in a scratch sandbox state directory (booting from the cached base tree), installed with the
simulated Gateway (its login asks no second factor) under the real IBC when IBKR_OPS_IBC_ZIP
(or ../shared/third-party/ibc) has it, else the simulated IBC zip; removed at the end. Each fault comes at a
random moment of the health-check timer's period, so the wait for the next check is sampled
as a real fault meets it. Each round starts with an empty restart history: the hourly cap (3
automatic restarts) would otherwise, rightly, stop the fourth round.
IBKR's maintenance windows are off, so the figures do not depend on the hour the bench runs;
the simulator's warm restart waits for the next minute, as IBC's does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import shlex
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_sim import ibc_zip

from ibkr_ops import demo, sandbox
from ibkr_ops.remote import switch
from ibkr_ops.remote.install import install_host
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import parse_deployment
from ibkr_ops.sim import artifacts as sim_artifacts

GUEST = "bheal"
CONTROL_PORT = 7499
INTERVAL_S = 30  # the default IBKR_HEALTH_INTERVAL_S
SIM_PROPERTIES = f"/home/trader/Jts/ibgateway/{sim_artifacts.TWS_MAJOR_VRSN}/sim.properties"
KINDS = ("frozen", "hung", "crash")


@dataclass(frozen=True)
class Heal:
    """One incident: fault to healthy, the detecting check's start to healthy, messages."""

    fault_to_healthy: float
    check_to_healthy: float
    notifications: int
    mode: str


def quiet(_message: str) -> None:
    """Progress lines are dropped: only the figures are printed."""


def run(command: str) -> str:
    host = switch.open_root(GUEST, ssh_configs=(sandbox.ssh_config_path(),))
    try:
        return str(host.root(command, warn=True).stdout)
    finally:
        host.conn.close()


def messages() -> list[tuple[float, str, str]]:
    """(time, title, description) of every notification the guest's receiver got."""
    found = json.loads(run(f"curl -s http://127.0.0.1:{demo.DISCORD_PORT}/_sim/messages"))
    out = []
    for message in found:
        embed = message["embeds"][0]
        at = dt.datetime.fromisoformat(message["timestamp"]).timestamp()
        out.append((at, embed["title"], embed["description"]))
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


def java_pid() -> str:
    """The simulated Gateway's "java" under IBC's scripts (IBC's command server runs in it)."""
    main = run("systemctl show -p MainPID --value ibkr-gateway.service").strip()
    return run(f"pgrep -P {main} -f IbcGateway").split()[0]


def check_starts(since: float) -> list[float]:
    """When each health-check run started since `since` (systemd's own journal lines)."""
    out = run(f"journalctl --no-pager -o short-unix -u ibkr-health-check.service "
              f"--since @{since:.0f} | grep 'Starting'")
    return [float(line.split()[0]) for line in out.splitlines() if line.strip()]


def last_mode() -> str:
    lines = [line for line in run("cat /var/lib/ibkr-ops/restarts.jsonl").splitlines() if line]
    return str(json.loads(lines[-1])["mode"]) if lines else "none"


def fresh_round() -> None:
    """Forget earlier rounds' restarts (the hourly cap counts them), then wait a random part
    of the timer's period."""
    run("rm -f /var/lib/ibkr-ops/restarts.jsonl")
    time.sleep(random.uniform(0, INTERVAL_S))  # noqa: S311 - a phase, not a secret


def heal_round(kind: str) -> Heal:
    """One frozen or hung Gateway, injected at a random moment of the timer's period."""
    fresh_round()
    start = len(messages())
    if kind == "frozen":
        pid = java_pid()
        at = float(run(f"date +%s.%N; kill -STOP {pid}").split()[0])
    else:
        script = (f"import socket; s = socket.create_connection(('127.0.0.1', {CONTROL_PORT}), "
                  "5); s.sendall(b'FAULT hang\\n'); print(s.recv(200).decode())")
        at = float(run(f"date +%s.%N; python3 -c {shlex.quote(script)}").split()[0])
    wait(lambda: any("healthy again" in m[2] for m in messages()[start:]), 600,
         f"the recovery notification ({kind})")
    incident = messages()[start:]
    alerted = next(t for t, title, _ in incident if title.startswith("ERROR"))
    back = next(t for t, _, text in incident if "healthy again" in text)
    detecting = max(s for s in check_starts(at - INTERVAL_S) if s <= alerted)
    time.sleep(INTERVAL_S + 10)  # one more check: nothing else may follow
    return Heal(back - at, back - detecting, len(messages()) - start, last_mode())


def crash_round() -> Heal:
    """kill -9 of the JVM: systemd restarts it; the next check reports the crash it healed."""
    fresh_round()
    start = len(messages())
    pid = java_pid()
    began = time.monotonic()
    run(f"kill -9 {pid}")
    wait(lambda: not healthy(), 30, "the crash to show")
    wait(healthy, 120, "a healthy Gateway after the crash")
    seconds = time.monotonic() - began
    time.sleep(INTERVAL_S + 15)
    return Heal(seconds, seconds, len(messages()) - start, "systemd")


def show(title: str, heals: list[Heal]) -> None:
    values = ", ".join(f"{h.fault_to_healthy:.0f}" for h in heals)
    print(f"{title}: fault to healthy median {statistics.median(h.fault_to_healthy for h in heals):.1f} s "
          f"({values} s; n={len(heals)}); detecting check to healthy median "
          f"{statistics.median(h.check_to_healthy for h in heals):.1f} s")
    print(f"  notifications per incident {[h.notifications for h in heals]}, "
          f"restart {[h.mode for h in heals]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind (default 3)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated, of {', '.join(KINDS)} (default all)")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if not set(kinds) <= set(KINDS):
        parser.error(f"--kinds takes {', '.join(KINDS)}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-heal-", dir="/var/tmp"))
    os.environ[STATE_ENV] = str(scratch / "state")
    try:
        sandbox.up([GUEST])
        d = parse_deployment(
            f"IBKR_USERNAME=bench_heal\nIBKR_PASSWORD=pw-{secrets.token_urlsafe(12)}\n"
            f"IBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN={sim_artifacts.TWS_MAJOR_VRSN}\n"
            f"DISCORD_WEBHOOK_URL={demo.DISCORD_URL}\nIBKR_MAINTENANCE_WINDOWS=none\n",
            source="bench")
        zip_path, kind_of_ibc = ibc_zip()
        print(f"IBC: {kind_of_ibc}")
        result = install_host(GUEST, d, demo.install_options(zip_path if zip_path.name else None,
                                                             120), quiet)
        if result.error:
            raise SystemExit(f"install failed: {result.error}")
        run(f"printf 'control_port={CONTROL_PORT}\\nsecond_factor=off\\n' >> {SIM_PROPERTIES}"
            " && systemctl restart ibkr-gateway.service")
        wait(healthy, 60, "a healthy Gateway")
        # One run now: on a guest booted a minute ago the timer's OnBootSec=2min comes first.
        run("systemctl start ibkr-health-check.service")
        print(f"default settings: a check every {d.health_interval_s} s, restart after "
              f"{d.hang_restart_after} failed probes; faults at a random moment of the period")
        titles = {"frozen": "frozen JVM (kill -STOP)",
                  "hung": "hung API, command server alive (warm restart at the next minute)",
                  "crash": "crash (kill -9 of the JVM)"}
        for kind in kinds:
            heals = [crash_round() if kind == "crash" else heal_round(kind)
                     for _ in range(args.rounds)]
            show(titles[kind], heals)
    finally:
        sandbox.down()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Instance figures on sandbox guests (needs root): the install of two Gateway instances
(paper and live, one plan) against one Gateway, each on a fresh guest and timed to healthy,
and the resident memory of an idle two-instance host.

Usage: python bench/bench_instances.py [--rounds N]   (or nox -s bench -- bench_instances)
The Gateway stand-in runs under the real IBC when IBKR_OPS_IBC_ZIP (or ../shared) has it,
else under the simulated IBC. Guests live in a private sandbox state directory and are
removed at the end; each round brings up two fresh ones (one Gateway, two instances).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_sim import ibc_zip

from ibkr_ops import demo, sandbox
from ibkr_ops.instances import Instance, host_instances
from ibkr_ops.layout import Layout
from ibkr_ops.remote.hosts import open_host
from ibkr_ops.remote.install import InstallOptions, install_host
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import Deployment, parse_deployment
from ibkr_ops.sim import artifacts as sim_artifacts

# The Gateways' own settings are their defaults, but for the second's display and port.
LIVE_EXTRA = "IBKR_DISPLAY=:2\nIBKR_COMMAND_SERVER_PORT=7463\n"


def deployment(mode: str, user: str, extra: str = "") -> Deployment:
    return parse_deployment(
        f"IBKR_USERNAME={user}\nIBKR_PASSWORD=pw-{secrets.token_urlsafe(12)}\n"
        f"IBKR_TRADING_MODE={mode}\nTWS_MAJOR_VRSN={sim_artifacts.TWS_MAJOR_VRSN}\n{extra}",
        source=f"{mode}.env")


def timed(name: str, what: Deployment | list[Instance], options: InstallOptions) -> float:
    """Bring up a fresh guest and time the install on it until every Gateway is healthy."""
    sandbox.up([name])
    started = time.perf_counter()
    report = install_host(name, what, options, lambda _: None)
    elapsed = time.perf_counter() - started
    if report.error:
        sys.exit(f"install on {name} failed: {report.error}")
    return elapsed


def shell(name: str, command: str) -> str:
    conn = open_host(name, ssh_configs=(sandbox.ssh_config_path(),))
    try:
        return str(conn.run(command, hide=True, warn=True, in_stream=False).stdout)
    finally:
        conn.close()


def memory(name: str, layouts: list[Layout]) -> tuple[dict[str, int], int]:
    """Resident memory in MB: each Gateway instance's (every process of its units, its Xvfb
    and login watch included, by the unit ps names), and the whole host's. RSS, because a
    sandbox guest on a hybrid cgroup tree has no memory controller per unit."""
    by_unit: dict[str, int] = {}
    for line in shell(name, "ps -eo rss=,unit=").splitlines():
        rss, _, unit = line.strip().partition(" ")
        if rss.isdigit():
            by_unit[unit.strip()] = by_unit.get(unit.strip(), 0) + int(rss)
    per = {str(layout.instance): sum(by_unit.get(u, 0) for u in layout.units) // 1024
           for layout in layouts}
    return per, sum(by_unit.values()) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="fresh guests of each (default 3)")
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds the two-instance host idles before its memory is read")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_instances needs root (sandbox guests)")
    zip_path, kind = ibc_zip()
    print(f"IBC: {kind}")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        os.environ[STATE_ENV] = str(Path(tmp) / "sandbox")
        options = demo.install_options(zip_path if zip_path.name else None, wait_s=240)
        pair = host_instances([("paper.env", deployment("paper", "bench_paper")),
                               ("live.env", deployment("live", "bench_live", LIVE_EXTRA))])
        one: list[float] = []
        two: list[float] = []
        try:
            for n in range(1, args.rounds + 1):
                one.append(timed(f"bio{n}", deployment("paper", "bench_paper"), options))
                two.append(timed(f"bit{n}", pair, options))
                if n < args.rounds:  # the last two stay up to idle side by side
                    sandbox.down(f"bio{n}")
                    sandbox.down(f"bit{n}")
            time.sleep(args.idle)
            per, total = memory(f"bit{args.rounds}", [i.layout for i in pair])
            alone = memory(f"bio{args.rounds}", [Layout()])
        finally:
            sandbox.down()
    print(f"install to healthy, fresh guest, one Gateway:   median {statistics.median(one):6.1f} s "
          f"({', '.join(f'{t:.1f}' for t in one)})")
    print(f"install to healthy, fresh guest, two instances: median {statistics.median(two):6.1f} s "
          f"({', '.join(f'{t:.1f}' for t in two)}) = "
          f"{statistics.median(two) / statistics.median(one):.2f}x one")
    print(f"idle two-instance host after {args.idle:.0f} s, resident memory (RSS): "
          + ", ".join(f"{name} {mb} MB" for name, mb in per.items())
          + f" (each instance's units); every process of the host {total} MB (one Gateway's "
          f"host: {alone[1]} MB, its units {alone[0]['None']} MB)")


if __name__ == "__main__":
    main()

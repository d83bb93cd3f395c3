"""Migration figures: a paper migration between two guests, a live one (stop, start, verify),
and a go-live switch from paper to healthy live, all with the simulated Gateway.

Run as root: `python bench/bench_migrate.py [--rounds N]`. Guests run in a scratch sandbox
state directory (boot from the cached base tree) and are removed at the end. Each figure
includes the readiness gate (health check, then the non-destructive verify checks).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ibkr_ops import demo, sandbox
from ibkr_ops.instances import Instance
from ibkr_ops.remote import golive
from ibkr_ops.remote.install import InstallOptions, install_host
from ibkr_ops.remote.migrate import MigrateOptions, migrate
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import Deployment, parse_deployment
from ibkr_ops.sim import artifacts as sim_artifacts


def deployment(mode: str) -> Deployment:
    return parse_deployment(
        f"IBKR_USERNAME=bench_{mode}\nIBKR_PASSWORD=pw-{secrets.token_urlsafe(12)}\n"
        f"IBKR_TRADING_MODE={mode}\nTWS_MAJOR_VRSN={sim_artifacts.TWS_MAJOR_VRSN}\n"
        f"DISCORD_WEBHOOK_URL={demo.DISCORD_URL}\n", source="bench")


def quiet(_message: str) -> None:
    """Progress lines are dropped: only the figures are printed."""


def progress_for(_host: str) -> Callable[[str], None]:
    return quiet


def timed(action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def report(label: str, seconds: list[float]) -> None:
    print(f"{label}: median {statistics.median(seconds):.1f} s "
          f"(min {min(seconds):.1f}, max {max(seconds):.1f}, n={len(seconds)})", flush=True)


def install(name: str, d: Deployment, options: InstallOptions) -> None:
    result = install_host(name, d, options, quiet)
    if result.error:
        raise SystemExit(f"install on {name} failed: {result.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind (default 3)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-migrate-", dir="/var/tmp"))
    os.environ[STATE_ENV] = str(scratch / "state")
    try:
        a, b = (g.name for g in sandbox.up(["bm1", "bm2"]))
        options = demo.install_options(None, 120)
        paper, live = deployment("paper"), deployment("live")
        for name in (a, b):
            install(name, paper, options)
        move = MigrateOptions(options, stop_source=True)
        hosts = [(a, b), (b, a)] * args.rounds

        def moves() -> list[float]:
            return [timed(partial(migrate, s, t, move, progress_for))
                    for s, t in hosts]

        report("paper migration with --stop-source (target has IBC and the Gateway already)",
               moves())
        switching = golive.GoLiveOptions(options, force=True)
        up: list[float] = []
        down: list[float] = []
        for _ in range(args.rounds):
            up.append(timed(lambda: golive.go_live(a, Instance("live", live, None), switching, quiet)))
            down.append(timed(lambda: golive.rollback(a, switching, quiet)))
        report("go-live: paper -> live, healthy and verified (simulated 1 s second factor)", up)
        report("go-live --rollback: live -> paper, healthy", down)
        install(a, live, options)
        report("live migration (install, stop source, start target, verify)", moves())
    finally:
        sandbox.down()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Gateway upgrade figures on a sandbox guest (needs root): upgrade to healthy, rollback to healthy.

Usage: python bench/bench_upgrade.py [--rounds N]   (or nox -s bench -- bench_upgrade)

One guest, installed with the simulated Gateway 10.30.1 under the real IBC when
IBKR_OPS_IBC_ZIP (or ../shared/third-party/ibc) has it, else the simulated IBC zip; removed at
the end. Each round: `upgrade` to 10.30.2 (healthy), `upgrade --rollback` to 10.30.1, and an
`upgrade` to a 10.30.2 that never logs in, which rolls back by itself once its wait is over.
"Switch" is the report's own figure: from the cold restart to healthy with the read-only
checks passed; "whole" adds the install beside the running build and the bookkeeping.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_sim import ibc_zip

from ibkr_ops import demo, sandbox
from ibkr_ops.gateway_installer import GatewayInstaller, gateway_installer
from ibkr_ops.remote import switch, upgrade
from ibkr_ops.remote.install import install_host
from ibkr_ops.remote.upgrade import UpgradeOptions, UpgradeReport
from ibkr_ops.sandbox.paths import STATE_ENV
from ibkr_ops.settings import parse_deployment
from ibkr_ops.sim import artifacts as sim_artifacts

GUEST = "bupg"
NEVER_WAIT_S = 20.0


def quiet(_message: str) -> None:
    """Progress lines are not part of the figures."""


def build(into: Path, version: str, *knobs: tuple[str, str]) -> GatewayInstaller:
    release = sim_artifacts.Release(version, knobs=knobs)
    path = into / f"{version}{'-never' if knobs else ''}" / release.installer_name
    path.parent.mkdir(parents=True)
    path.write_bytes(sim_artifacts.build_installer(release))
    return gateway_installer(path)


def timed(options: UpgradeOptions, installer: GatewayInstaller | None,
          expect_error: bool = False) -> tuple[float, UpgradeReport]:
    host = switch.open_root(GUEST, ssh_configs=(sandbox.ssh_config_path(),))
    try:
        started = time.perf_counter()
        report = (upgrade.rollback(host, options, quiet) if installer is None
                  else upgrade.upgrade(host, installer, options, quiet))
        elapsed = time.perf_counter() - started
    finally:
        host.conn.close()
    if (report.error is not None) != expect_error:
        raise SystemExit(f"unexpected outcome: {report.lines()}")
    return elapsed, report


def show(title: str, values: list[float]) -> None:
    print(f"{title}: median {statistics.median(values):6.2f} s  "
          f"({', '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_upgrade needs root (sandbox guests)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-upgrade-", dir="/var/tmp"))
    os.environ[STATE_ENV] = str(scratch / "state")
    try:
        first, second = build(scratch, "10.30.1"), build(scratch, "10.30.2")
        never = build(scratch, "10.30.2", ("login_delay", "86400"))
        sandbox.up([GUEST])
        d = parse_deployment(
            f"IBKR_USERNAME=bench_upgrade\nIBKR_PASSWORD=pw-{secrets.token_urlsafe(12)}\n"
            "IBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN=1030\n"
            f"DISCORD_WEBHOOK_URL={demo.DISCORD_URL}\n", source="bench")
        zip_path, kind_of_ibc = ibc_zip()
        print(f"IBC: {kind_of_ibc}")
        install = dataclasses.replace(
            demo.install_options(zip_path if zip_path.name else None, 120), gateway=first)
        result = install_host(GUEST, d, install, quiet)
        if result.error:
            raise SystemExit(f"install failed: {result.error}")
        options = UpgradeOptions(dataclasses.replace(install, gateway=None), force=True)
        never_options = dataclasses.replace(options, install=dataclasses.replace(
            options.install, wait_s=NEVER_WAIT_S))
        ups, up_whole, backs, auto = [], [], [], []
        for _ in range(args.rounds):
            whole, report = timed(options, second)
            ups.append(report.switch_s)
            up_whole.append(whole)
            backs.append(timed(options, None)[1].switch_s)
            auto.append(timed(never_options, never, expect_error=True)[1].rollback_s)
        show("upgrade 10.30.1 -> 10.30.2, switch to healthy      ", ups)
        show("upgrade 10.30.1 -> 10.30.2, whole command          ", up_whole)
        show("--rollback 10.30.2 -> 10.30.1, switch to healthy   ", backs)
        show(f"automatic rollback (after the {NEVER_WAIT_S:.0f} s wait), to healthy", auto)
    finally:
        sandbox.down()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

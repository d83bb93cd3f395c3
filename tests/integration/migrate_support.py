"""What the migrate and go-live tests share: deployments, installs, host state and secret hunts."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

from sim_support import real_ibc_zip

from ibkr_ops import demo, sandbox
from ibkr_ops.remote import switch
from ibkr_ops.remote.install import InstallOptions, install_host
from ibkr_ops.remote.primitives import Host
from ibkr_ops.sandbox.paths import layout
from ibkr_ops.settings import Deployment, parse_deployment
from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.sim import logins

GATEWAY_DIR = f"/home/trader/Jts/ibgateway/{sim_artifacts.TWS_MAJOR_VRSN}"
SIM_PROPERTIES = f"{GATEWAY_DIR}/sim.properties"
LOGINS = "/home/trader/Jts/ibkr-gateway-sim-logins.jsonl"
STATE_PATHS = "/etc/ibkr /etc/systemd/system /opt/ibc /usr/local/bin"


def credentials_text(mode: str = "paper", username: str = "mig_trader", extra: str = "",
                     *, webhook: bool = True) -> str:
    """A credentials file with a fresh random password, reporting to the in-guest receiver
    (or to no webhook at all)."""
    return (f"IBKR_USERNAME={username}\nIBKR_PASSWORD=pw-{secrets.token_urlsafe(16)}\n"
            f"IBKR_TRADING_MODE={mode}\nTWS_MAJOR_VRSN={sim_artifacts.TWS_MAJOR_VRSN}\n"
            + (f"DISCORD_WEBHOOK_URL={demo.DISCORD_URL}\n" if webhook else "") + extra)


def deployment(mode: str = "paper", username: str = "mig_trader", extra: str = "",
               *, webhook: bool = True) -> Deployment:
    return parse_deployment(credentials_text(mode, username, extra, webhook=webhook),
                            source="test")


def options(wait_s: float = 120.0, *, real_ibc: bool = True) -> InstallOptions:
    """The real IBC zip, the simulated Gateway installer (the stand-in) and the demo's
    in-guest Discord receiver; with ``real_ibc=False`` the simulated IBC zip, which runs the
    Python-only simulator instead."""
    return demo.install_options(real_ibc_zip() if real_ibc else None, wait_s)


def say(message: str) -> None:
    print(message, flush=True)


def install(name: str, d: Deployment, *, real_ibc: bool = True) -> None:
    """Install (or converge) a guest with ``d`` through the real install path; healthy after.

    Test set-up may put a live deployment straight onto a guest that ran paper before.
    """
    report = install_host(name, d, dataclasses.replace(options(real_ibc=real_ibc),
                                                       allow_live_switch=True), say)
    assert report.error is None, report.error


@contextlib.contextmanager
def root(name: str) -> Iterator[Host]:
    host = switch.open_root(name, ssh_configs=(sandbox.ssh_config_path(),))
    try:
        yield host
    finally:
        host.conn.close()


def run(name: str, command: str) -> str:
    with root(name) as host:
        return str(host.root(command, warn=True).stdout)


def state(name: str) -> str:
    """Checksums of the managed trees plus the units' states and the Gateway's PID."""
    return run(name, f"find {STATE_PATHS} -type f 2>/dev/null | sort | xargs -r sha256sum; "
                     "systemctl is-enabled ibkr-gateway.service ibkr-health-check.timer "
                     "ibkr-gateway-restart.timer 2>&1; systemctl is-active ibkr-gateway.service; "
                     "systemctl show -p MainPID --value ibkr-gateway.service")


def unit_state(name: str) -> tuple[str, str]:
    """(is-enabled, is-active) of the Gateway's unit."""
    show = "systemctl show --value ibkr-gateway.service -p"
    enabled, _, active = run(name, f'echo "$({show} UnitFileState)|$({show} ActiveState)"'
                             ).strip().partition("|")
    return enabled or "not-found", active


def set_fault(name: str, fault: str | None) -> None:
    """Give the guest's simulated Gateway a fault from its next start (None: clear it)."""
    set_sim_property(name, "faults", fault)


def set_sim_property(name: str, key: str, value: str | None) -> None:
    """One knob of the guest's simulated Gateway (sim.properties), from its next start."""
    line = f"{key}={value}" if value else ""
    run(name, f"sed -i '/^{key}=/d' {SIM_PROPERTIES} && "
              f"printf '%s\\n' {shlex.quote(line)} >> {SIM_PROPERTIES}")


def health(name: str) -> dict[str, object]:
    return dict(json.loads(run(name, "/usr/local/bin/ibkr-health-check --json")))


def fetch_logins(names: list[str], into: Path) -> list[Path]:
    """Each guest's login record, copied here so the simulator's checker can read them all."""
    paths = []
    for name in names:
        path = into / f"{name}-logins.jsonl"
        path.write_text(run(name, f"cat {LOGINS} 2>/dev/null"))
        paths.append(path)
    return paths


def live_overlaps(paths: list[Path]) -> list[tuple[logins.Session, logins.Session]]:
    """Pairs of processes that held one live (U…) account at the same time."""
    return [pair for pair in logins.overlaps(paths) if pair[0].account.startswith("U")]


@contextlib.contextmanager
def argv_recorder(names: list[str]) -> Iterator[list[str]]:
    """Record every process's command line on the guests while the block runs."""
    script = ("while [ ! -e /root/argv.stop ]; do cat /proc/[0-9]*/cmdline 2>/dev/null "
              "| tr '\\0' ' ' >> /root/argv.log; echo >> /root/argv.log; sleep 0.2; done")
    for name in names:
        run(name, f"rm -f /root/argv.log /root/argv.stop; "
                  f"nohup sh -c {shlex.quote(script)} >/dev/null 2>&1 &")
    seen: list[str] = []
    try:
        yield seen
    finally:
        for name in names:
            run(name, "touch /root/argv.stop")
        time.sleep(0.5)
        seen += [run(name, "cat /root/argv.log; rm -f /root/argv.log /root/argv.stop")
                 for name in names]


def journal(name: str) -> str:
    return run(name, "journalctl --no-pager -o cat")


def local_files_with(secret: str, since: float, roots: list[Path]) -> list[Path]:
    """Files under ``roots`` changed since ``since`` that contain ``secret``.

    The sandbox's state directory is skipped: it holds the guests' own disks.
    """
    needle = secret.encode()
    guests = str(layout().state)
    found = []
    for base in roots:
        for dirpath, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not os.path.join(dirpath, d).startswith(guests)]
            for file in files:
                path = Path(dirpath) / file
                with contextlib.suppress(OSError):
                    info = path.lstat()
                    if (info.st_mtime >= since and info.st_size < 5_000_000
                            and path.is_file() and needle in path.read_bytes()):
                        found.append(path)
    return found


def discord_messages(name: str) -> list[dict[str, object]]:
    """What the guest's Discord-compatible receiver got, oldest first."""
    out = run(name, f"curl -s http://127.0.0.1:{demo.DISCORD_PORT}/_sim/messages")
    return list(json.loads(out))

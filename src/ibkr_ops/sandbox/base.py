"""The Debian 12 base tree every guest boots from: built once with debootstrap, then cached.

A tree is built in a temporary directory and renamed into place only when complete, and the
stamp (suite, variant, packages) is written last: a half-built or outdated tree is never
taken as the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ibkr_ops import packages
from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox.paths import Layout
from ibkr_ops.sandbox.progress import say, wait_for

SUITE = "bookworm"
VARIANT = "minbase"
MIRROR_ENV = "IBKR_OPS_SANDBOX_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

#: What an Ubuntu gateway server has that the stack needs: systemd as PID 1, sshd, python3
#: (host tools are stdlib-only), Xvfb and xdpyinfo (x11-utils) for the display, and the
#: small utilities install scripts and health checks call; needrestart, which Ubuntu's apt
#: and unattended-upgrades run after every upgrade, so tests can prove it leaves us alone;
#: Debian's Java 17 runtime with its X11 toolkit (not the headless one), which the real IBC
#: and the Gateway stand-in run on.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv",
    "iproute2", "procps", "netcat-openbsd", "curl", "xvfb", "xterm", "x11-utils", "unzip",
    "sudo", "tzdata", "ca-certificates", "less", "needrestart", "openjdk-17-jre",
)
#: Installed with apt inside the finished tree (debootstrap's resolver cannot pick between a
#: package's alternatives, which GTK's dependencies need). Guests reach no apt mirror, so what
#: `invoke install` would apt-get on a server is here already: the screen tools and the
#: embedded browser's libraries (ibkr_ops.packages). Debian's chromium is the test subject for
#: what the Gateway unit's hardening does to a Chromium under Xvfb (the Gateway's own
#: JxBrowser Chromium cannot be had here).
APT_PACKAGES = (*(p for p in packages.required_packages("debian", "12") if p not in PACKAGES),
                "chromium")

#: Root may log in by key only; one host key type, generated per guest on the host side.
SSHD_DROP_IN = """\
# Written by ibkr-ops for sandbox guests.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
"""

BUILD_TIMEOUT = 30 * 60


def stamp() -> dict[str, object]:
    """What the cached tree was built from; any difference means a rebuild."""
    return {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES),
            "apt": sorted(APT_PACKAGES)}


def is_current(layout: Layout) -> bool:
    """Whether the cache holds a complete tree built from today's package list."""
    try:
        recorded = json.loads(layout.base_stamp.read_text())
    except (OSError, ValueError):
        return False
    return recorded == stamp() and layout.base.is_dir()


def write_stamp(layout: Layout) -> None:
    """Mark the tree at `layout.base` as complete (written atomically, last)."""
    tmp = layout.base_stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp(), indent=2) + "\n")
    tmp.replace(layout.base_stamp)


def ensure_base(layout: Layout, *, guests_exist: bool) -> Path:
    """Return the cached base tree, building it first when it is missing or outdated."""
    if is_current(layout):
        return layout.base
    if guests_exist and layout.base.exists():
        raise OpsError(
            "the sandbox base tree is outdated but guests still use it: "
            "run `invoke sandbox.down` first, then `invoke sandbox.up`"
        )
    layout.cache.mkdir(parents=True, exist_ok=True)
    for stale in layout.cache.glob(f"{layout.base.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{layout.base.name}.partial-", dir=layout.cache))
    try:
        _debootstrap(partial, layout.base_log)
        _apt_install(partial, layout.base_log)
        _prepare(partial)
        layout.base_stamp.unlink(missing_ok=True)
        if layout.base.exists():
            shutil.rmtree(layout.base)
        partial.rename(layout.base)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_stamp(layout)
    return layout.base


def _debootstrap(target: Path, log: Path) -> None:
    mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    say(f"building the sandbox base tree (Debian {SUITE}, about 4 minutes); log: {log}")
    log.write_text("")
    _run_logged("debootstrap", ["debootstrap", f"--variant={VARIANT}",
                                f"--include={','.join(PACKAGES)}", SUITE, str(target), mirror],
                log, {})


def _apt_install(tree: Path, log: Path) -> None:
    """apt-get inside the tree, with service starts refused (nothing may run on this box)."""
    policy = tree / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    env = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1",
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        _run_logged("apt-get install", ["chroot", str(tree), "apt-get", "install", "-y", "-q",
                                        "--no-install-recommends", *APT_PACKAGES], log, env)
    finally:
        policy.unlink()


def _run_logged(what: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
    with log.open("a") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env=env or None)
        try:
            code = wait_for(what, proc.poll, timeout=BUILD_TIMEOUT, poll=1.0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no output"
        raise OpsError(f"{what} failed ({last}); see {log}")


def _prepare(tree: Path) -> None:
    """Make the tree a template: no shared identity (host keys, machine id), no apt cache."""
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc/machine-id").write_text("")
    (tree / "etc/ssh/sshd_config.d/ibkr-sandbox.conf").write_text(SSHD_DROP_IN)
    for leftover in (tree / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()

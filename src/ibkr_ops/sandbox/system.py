"""Running host commands and making sure the host can run guests at all."""

from __future__ import annotations

import os
import shutil
import subprocess

from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox.progress import say

#: Each tool the sandbox runs on the host, and the Debian package that ships it.
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "nsenter": "util-linux",
}


def run(argv: list[str], *, timeout: float = 120) -> str:
    """Run a command, return its stdout; a failure becomes an OpsError quoting its stderr."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OpsError(f"{argv[0]} failed: {error}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit status {done.returncode}"
        raise OpsError(f"`{' '.join(argv)}` failed: {last}")
    return done.stdout


def require_root() -> None:
    """Namespaces, mounts and cgroups need root; say so before touching anything."""
    if os.geteuid() != 0:
        raise OpsError(
            "sandbox guests need root (network namespaces, overlay mounts, cgroups): "
            "run the command as root, e.g. with sudo"
        )


def missing_packages() -> list[str]:
    """The Debian packages whose tools are not on PATH, in a stable order."""
    return sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})


def ensure_tools() -> None:
    """Install the host packages the sandbox needs when some are missing, and say so."""
    missing = missing_packages()
    if not missing:
        return
    how = f"apt-get install -y {' '.join(missing)}"
    if shutil.which("apt-get") is None:
        raise OpsError(f"the sandbox needs the Debian packages {', '.join(missing)}: install them")
    say(f"installing missing host packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    # A fresh machine may have no package lists yet: update once, then try again.
    for argv in (install, ["apt-get", "update"], install):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if argv is install and done.returncode == 0:
            break
    if missing_packages():
        raise OpsError(f"could not install {' '.join(missing)}; run `{how}` and retry")

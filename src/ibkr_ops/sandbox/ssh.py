"""SSH material for the guests: the sandbox's client key, per-guest host keys, and the
known_hosts and ssh_config files that let `ssh -F` and Fabric connect without trusting a
key on first use.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ibkr_ops.sandbox.paths import Layout
from ibkr_ops.sandbox.system import run

USER = "root"
PORT = 22


def ensure_client_key(layout: Layout) -> Path:
    """Generate the sandbox's ed25519 client key once; return its private key file."""
    key = layout.identity_file
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ibkr-ops-sandbox",
             "-f", str(key)])
    return key


def new_host_key(name: str) -> tuple[bytes, str]:
    """A fresh ed25519 host key for a guest: (private key file content, public key line)."""
    with tempfile.TemporaryDirectory() as scratch:
        key = Path(scratch) / "key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
             "-f", str(key)])
        return key.read_bytes(), (key.with_suffix(".pub")).read_text().strip()


def known_hosts_line(name: str, address: str, public_key: str) -> str:
    """One known_hosts entry valid under both the guest's name and its address."""
    key_type, key_data = public_key.split()[:2]
    return f"{name},{address} {key_type} {key_data}\n"


def ssh_config_block(name: str, address: str, layout: Layout) -> str:
    """The `Host` block for one guest: key only, strict host key checking."""
    return (
        f"Host {name}\n"
        f"    HostName {address}\n"
        f"    User {USER}\n"
        f"    Port {PORT}\n"
        f"    IdentityFile {layout.identity_file}\n"
        f"    UserKnownHostsFile {layout.known_hosts}\n"
        "    StrictHostKeyChecking yes\n"
        "    IdentitiesOnly yes\n"
        "    BatchMode yes\n"
    )


def write_files(layout: Layout, entries: Iterable[tuple[str, str, str]]) -> None:
    """Rewrite known_hosts and ssh_config from (name, address, host public key) entries."""
    entries = sorted(entries)
    known = "".join(known_hosts_line(n, a, k) for n, a, k in entries)
    config = "# Written by ibkr-ops `invoke sandbox.up`; regenerated on every change.\n\n"
    config += "\n".join(ssh_config_block(n, a, layout) for n, a, _ in entries)
    _write_atomic(layout.known_hosts, known)
    _write_atomic(layout.ssh_config, config)


def _write_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def ssh_answers(layout: Layout, name: str) -> bool:
    """Whether `ssh -F ssh_config NAME true` logs in with the sandbox key and host key."""
    argv = ["ssh", "-F", str(layout.ssh_config), "-o", "ConnectTimeout=3", name, "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0

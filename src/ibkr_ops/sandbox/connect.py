"""A Fabric connection to a guest that trusts only the sandbox's known_hosts.

Fabric 3 reads HostName, User, Port and IdentityFile from an ssh_config but neither
UserKnownHostsFile nor StrictHostKeyChecking, and it auto-adds unknown host keys; both are
applied here on the paramiko client. Kept apart from the package's `__init__` so the
supervisor does not import Fabric.
"""

from __future__ import annotations

import fabric  # type: ignore[import-untyped]
import paramiko

from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox.ops import guests
from ibkr_ops.sandbox.paths import layout


def connection(name: str) -> fabric.Connection:
    """Connect to guest `name` the way `--host=NAME` does, refusing any unknown host key."""
    where = layout()
    if name not in {guest.name for guest in guests(where)}:
        raise OpsError(f"no sandbox named {name}; start it with `invoke sandbox.up --name {name}`")
    # Unattended use (installs, tests): commands never read this process's stdin.
    config = fabric.Config(
        runtime_ssh_path=str(where.ssh_config), overrides={"run": {"in_stream": False}}
    )
    conn = fabric.Connection(name, config=config)
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn.client.load_host_keys(str(where.known_hosts))
    return conn

"""A Fabric connection to a guest, checked like any other host (see ``remote.hosts``).

Kept apart from the package's ``__init__`` so the supervisor does not import Fabric.
"""

from __future__ import annotations

import fabric  # type: ignore[import-untyped]

from ibkr_ops.errors import OpsError
from ibkr_ops.remote.hosts import open_host
from ibkr_ops.sandbox.ops import guests


def connection(name: str) -> fabric.Connection:
    """Connect to guest `name` the way `--host=NAME` does, refusing any unknown host key."""
    if name not in {guest.name for guest in guests()}:
        raise OpsError(f"no sandbox named {name}; start it with `invoke sandbox.up --name {name}`")
    return open_host(name)

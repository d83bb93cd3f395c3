"""A Fabric connection to a guest, checked like any other host (see ``remote.hosts``).

Kept apart from the package's ``__init__`` so the supervisor does not import Fabric.
"""

from __future__ import annotations

import fabric  # type: ignore[import-untyped]

from ibkr_ops.remote.hosts import open_host
from ibkr_ops.sandbox.ops import require
from ibkr_ops.sandbox.paths import layout


def connection(name: str) -> fabric.Connection:
    """Connect to guest `name` the way `--host=NAME` does, refusing any unknown host key."""
    require(name)
    return open_host(name, ssh_configs=(str(layout().ssh_config),))

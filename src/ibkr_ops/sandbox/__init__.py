"""Sandbox hosts: real systemd machines on one box, booted with systemd-nspawn.

Each guest is a Debian 12 system with systemd as PID 1 and sshd, on its own copy-on-write
root, network namespace and cgroup. Entry points: `up`, `down`, `reboot`, `guests` (how to
reach each one) and `ssh_config_path`; `ibkr_ops.sandbox.connect.connection` gives a Fabric
connection that refuses unknown host keys.

Memory limits are not enforced inside a guest: on a hybrid cgroup hierarchy the guest sees
the v1 controllers read-only, so `MemoryMax=` shows in `systemctl show` but nothing is
accounted. Check a memory ceiling by the process's resident memory instead.
"""

from __future__ import annotations

from ibkr_ops.sandbox.ops import Guest, down, guests, names_for, reboot, require, up
from ibkr_ops.sandbox.paths import layout

__all__ = ["Guest", "down", "guests", "names_for", "reboot", "require", "ssh_config_path", "up"]


def ssh_config_path() -> str:
    """The ssh_config file with one `Host NAME` block per guest (for `ssh -F` and Fabric)."""
    return str(layout().ssh_config)

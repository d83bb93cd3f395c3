"""The Gateways of one host, one per credentials file: their names, and what they may not share.

Everything here is decided on the operator's machine, before any host is contacted, so a
clash is one line naming both files and nothing is half-installed. The one check that needs
the host (its memory) is a pure function of the facts the install has already gathered.

What instances share follows from the layout: one service user, whose home holds the one
Gateway installation (``Layout.tws_dir``) and whose build ``TWS_MAJOR_VRSN`` and
``IBKR_GATEWAY_SHA256`` name; one IBC (``layout.IBC_DIR``, chosen by the install's options,
not by the files) and one set of host tools. What each has of its own (ports, display,
Gateway settings directory, login) must not be claimed twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ibkr_ops.errors import UsageError
from ibkr_ops.host import schema
from ibkr_ops.layout import Layout
from ibkr_ops.remote.facts import Facts
from ibkr_ops.settings import Deployment

# Memory a host needs beyond its Gateways' MemoryMax=, so that a Gateway growing to its own
# limit is stopped by it (its own restart) before the host runs out and the kernel's OOM killer
# picks a victim, most likely the other Gateway, the biggest process there. The system: the
# kernel's own allocations, systemd, journald, sshd and apt's daily runs. Each Gateway: what
# runs outside its cgroup, its Xvfb (about 70 MB resident with its 1280x1024x24 screen), its
# login watch and its health check runs (Python, tens of MB each).
SYSTEM_HEADROOM_MB = 384
INSTANCE_OVERHEAD_MB = 128

# What every instance of a host shares, and why they must agree on it.
_SHARED: tuple[tuple[schema.Setting[Any], str], ...] = (
    (schema.SERVICE_USER, "the Gateways of a host run as one user, whose home holds the "
                          "Gateway installation"),
    (schema.TWS_MAJOR_VRSN, "the Gateways of a host run one Gateway installation"),
    (schema.GATEWAY_SHA256, "the Gateways of a host run one Gateway installation"),
)


@dataclass(frozen=True)
class Instance:
    """One Gateway of a host: the credentials file it comes from (as the operator named it),
    its deployment and its name (None: the single-Gateway layout)."""

    source: str
    deployment: Deployment
    name: str | None

    @property
    def layout(self) -> Layout:
        return Layout(self.name)

    @property
    def settings_dir(self) -> str:
        return self.layout.settings_dir(self.deployment.home)


def instance_name(d: Deployment, *, alone: bool) -> str | None:
    """IBKR_INSTANCE if set; else the trading mode beside other Gateways, and no name for a
    Gateway alone, which keeps a single-Gateway host exactly as it was."""
    if d.instance is not None:
        return d.instance
    return None if alone else d.trading_mode


def host_instances(files: Sequence[tuple[str, Deployment]]) -> list[Instance]:
    """The instances of one host from its (file, deployment) pairs, in the order given; the
    first clash between two of them is one UsageError naming both files."""
    found = [Instance(source, d, instance_name(d, alone=len(files) == 1)) for source, d in files]
    for a, b in itertools.combinations(found, 2):
        why = _clash(a, b)
        if why:
            raise UsageError(f"{a.source} and {b.source}: {why}")
    return found


def _clash(a: Instance, b: Instance) -> str | None:
    return (_same_name(a, b) or _disagree(a.deployment, b.deployment) or _same_port(a, b)
            or _same_resource(a, b))


def _same_name(a: Instance, b: Instance) -> str | None:
    if a.name != b.name:
        return None
    unnamed = " (named by its trading mode: neither sets IBKR_INSTANCE)" \
        if a.deployment.instance is None and b.deployment.instance is None else ""
    return (f"both are Gateway instance {a.name!r}{unnamed}; set another "
            f"{schema.INSTANCE.key} in one of them")


def _disagree(a: Deployment, b: Deployment) -> str | None:
    for setting, why in _SHARED:
        mine, theirs = getattr(a, setting.name), getattr(b, setting.name)
        if mine != theirs:
            return (f"{setting.key} differs ({_shown(mine)} and {_shown(theirs)}), but {why}; "
                    "set the same in both")
    return None


def _shown(value: str | None) -> str:
    # A sha256 is shortened to what tells two apart; no shared setting is a secret.
    return "none" if value is None else repr(value if len(value) < 20 else value[:12] + "...")


def _ports(d: Deployment) -> tuple[tuple[int, str], ...]:
    return ((d.api_port, schema.API_PORT.key),
            (d.command_server_port, schema.COMMAND_SERVER_PORT.key))


def _same_port(a: Instance, b: Instance) -> str | None:
    for (port, key), (other, other_key) in itertools.product(_ports(a.deployment),
                                                              _ports(b.deployment)):
        if port == other:
            keys = key if key == other_key else f"{key} in the first, {other_key} in the second"
            return f"both use port {port} ({keys}); give one of them another port"
    return None


def _same_resource(a: Instance, b: Instance) -> str | None:
    da, db = a.deployment, b.deployment
    if da.display == db.display:
        return (f"both use X display {da.display} ({schema.DISPLAY.key}); give one of them "
                "another, e.g. :2")
    # Follows from the names and the one service user today; checked on its own so that a
    # layout that lets the directory be chosen stays guarded.
    if a.settings_dir == b.settings_dir:
        return f"both keep their Gateway settings in {a.settings_dir}; give them other names"
    # Compared without regard to case: refusing a pair IBKR would tell apart costs less than
    # letting one login log the other out.
    if da.username.casefold() == db.username.casefold():
        return (f"both log in as the same {schema.USERNAME.key}: the second login would log "
                "the first out; give each instance its own login (a paper account has its own)")
    return None


def memory_needed_mb(instances: Sequence[Instance]) -> int:
    """What a host must have for these Gateways: their MemoryMax= and the headroom."""
    return (sum(i.deployment.memory_max_mb for i in instances) + SYSTEM_HEADROOM_MB
            + INSTANCE_OVERHEAD_MB * len(instances))


def check_memory(instances: Sequence[Instance], facts: Facts) -> None:
    """Refuse more Gateways than the host's memory holds (UsageError), on the facts the install
    gathered. One Gateway alone is preflight's business: there a host running out of memory
    stops the same Gateway its own limit would, so its MemoryMax= may be all the host has."""
    if len(instances) < 2:
        return
    needed = memory_needed_mb(instances)
    if needed > facts.memory_mb:
        limits = " + ".join(str(i.deployment.memory_max_mb) for i in instances)
        sources = ", ".join(i.source for i in instances[:-1]) + f" and {instances[-1].source}"
        raise UsageError(
            f"{sources}: {len(instances)} Gateways need {needed} MB ({limits} MB of "
            f"{schema.MEMORY_MAX_MB.key}, {SYSTEM_HEADROOM_MB} MB for the system and "
            f"{INSTANCE_OVERHEAD_MB} MB beside each Gateway), but the host has "
            f"{facts.memory_mb} MB; lower {schema.MEMORY_MAX_MB.key} or use a larger host")

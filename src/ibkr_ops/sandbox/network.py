"""A network namespace and veth pair per guest: reachable from the host, no route beyond.

The guest in slot N gets 10.231.N.2/30 with the host end at 10.231.N.1; no default route is
set, so a guest behaves like a locked-down server that cannot reach the internet. Namespaces
are named by slot, not by guest name, so guests of another state directory (a test session
that crashed, say) can never collide with these.
"""

from __future__ import annotations

from pathlib import Path

from ibkr_ops.sandbox.paths import RESOURCE_PREFIX
from ibkr_ops.sandbox.system import run

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
MAX_INDEX = 254


def netns_name(slot: int) -> str:
    return f"{RESOURCE_PREFIX}{slot}"


def netns_path(slot: int) -> Path:
    return NETNS_DIR / netns_name(slot)


def host_link(slot: int) -> str:
    """The host end of the veth pair (link names allow 15 characters)."""
    return f"ibkrsbx{slot}"


def guest_address(slot: int) -> str:
    return f"10.231.{slot}.2"


def host_address(slot: int) -> str:
    return f"10.231.{slot}.1"


def slots_in_use() -> set[int]:
    """Slots whose host link exists, whoever made it (another state directory, say)."""
    return {i for i in range(1, MAX_INDEX + 1) if (SYS_NET / host_link(i)).exists()}


def exists(slot: int) -> bool:
    return netns_path(slot).exists()


def create(slot: int) -> None:
    """Create the namespace and the veth pair; remove what was made if a step fails."""
    ns, link = netns_name(slot), host_link(slot)
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "addr", "add", f"{host_address(slot)}/30", "dev", link])
        run(["ip", "link", "set", link, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{guest_address(slot)}/30", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    except BaseException:
        remove(slot)
        raise


def remove(slot: int) -> None:
    """Delete the namespace; its veth pair goes with it."""
    if exists(slot):
        run(["ip", "netns", "delete", netns_name(slot)])

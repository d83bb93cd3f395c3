"""A network namespace and veth pair per guest: reachable from the host, no route beyond.

Guest N gets 10.231.N.2/30 with the host end at 10.231.N.1; no default route is set, so a
guest behaves like a locked-down server that cannot reach the internet.
"""

from __future__ import annotations

from pathlib import Path

from ibkr_ops.sandbox.paths import RESOURCE_PREFIX
from ibkr_ops.sandbox.system import run

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
MAX_INDEX = 254


def netns_name(name: str) -> str:
    return f"{RESOURCE_PREFIX}{name}"


def netns_path(name: str) -> Path:
    return NETNS_DIR / netns_name(name)


def host_link(index: int) -> str:
    """The host end of the veth pair; named by index because links allow 15 characters."""
    return f"ibkrsbx{index}"


def guest_address(index: int) -> str:
    return f"10.231.{index}.2"


def host_address(index: int) -> str:
    return f"10.231.{index}.1"


def slots_in_use() -> set[int]:
    """Slots whose host link exists, whoever made it (another state directory, say)."""
    return {i for i in range(1, MAX_INDEX + 1) if (SYS_NET / host_link(i)).exists()}


def exists(name: str) -> bool:
    return netns_path(name).exists()


def create(name: str, index: int) -> None:
    """Create the namespace and the veth pair; remove what was made if a step fails."""
    ns, link = netns_name(name), host_link(index)
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "addr", "add", f"{host_address(index)}/30", "dev", link])
        run(["ip", "link", "set", link, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{guest_address(index)}/30", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    except BaseException:
        remove(name)
        raise


def remove(name: str) -> None:
    """Delete the namespace; its veth pair goes with it."""
    if exists(name):
        run(["ip", "netns", "delete", netns_name(name)])

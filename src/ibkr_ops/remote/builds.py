"""The Gateway builds a host keeps side by side: what is there, which one runs, which to keep.

Each build lives in a directory of its own version, ``~/Jts/builds/10.30.1``, where its own
installer put it (install4j writes absolute paths into an installation, so a build is never
moved once installed). IBC finds the Gateway as ``<tws-path>/ibgateway/<major>`` and the unit
names only the major version (``TWS_MAJOR_VRSN``), so that path is a link to one build; a switch
re-points the link (and, for a new major version, rewrites the unit) and restarts the Gateway.
Two builds of one major version (10.30.1 and 10.30.2) sit side by side the same way.

A host installed before builds were kept has its build as a real directory at
``ibgateway/<major>``: it is counted as a build where it is, and moved into ``builds/`` only
while the Gateway is stopped for a switch, under the link its own absolute paths name.

The history (``Layout.build_history``) says which builds ran, in order: the running build is
the one the running major's link names, the previous one is the last other build in the
history. Parsing and choosing are pure; the commands are strings for ``Host.root``.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ibkr_ops.errors import UsageError
from ibkr_ops.gateway_installer import (
    PROVENANCE_FILE,
    GatewayInstaller,
    check_arch,
    check_fits,
    parse_provenance,
)
from ibkr_ops.host import gatewayversion
from ibkr_ops.layout import Layout
from ibkr_ops.remote import systemctl
from ibkr_ops.remote.facts import MIN_DISK_MB

# A version as a directory name: IBKR's 10.45.1h, or legacy-1030 for a build of unknown version.
_NAME = re.compile(r"[0-9][0-9a-z.]{0,31}|legacy-[0-9]{3,5}")
# An unpacked build takes about twice its installer (the runtime is compressed in it); the
# upload needs the installer's size again, and the host's usual margin stays free.
UNPACK_FACTOR = 3
DEFAULT_KEEP = 2

_SCRIPT = r"""
echo "ARCH $(uname -m)"
echo "FREE_KB $(df -Pk "$HOME_DIR" | awk 'NR==2 {print $4}')"
for d in "$BUILDS"/*; do
  [ -d "$d/jars" ] && [ ! -L "$d" ] && echo "BUILD $d $(cat "$d/$PROVENANCE" 2>/dev/null)"
done
for p in "$LINKS"/*; do
  if [ -L "$p" ]; then echo "LINK ${p##*/} $(readlink "$p")"
  elif [ -d "$p/jars" ]; then echo "LEGACY $p $(cat "$p/$PROVENANCE" 2>/dev/null)"; fi
done
[ -f "$HISTORY" ] && sed 's/^/RAN /' "$HISTORY"
true
"""


@dataclass(frozen=True)
class Build:
    """One installed build: its version (the directory's name), where it is and its
    provenance (empty for builds installed before provenance was kept)."""

    version: str
    path: str
    provenance: dict[str, str] = field(default_factory=dict)
    legacy: bool = False  # still a real directory at ibgateway/<major>

    @property
    def major(self) -> str:
        if self.version.startswith("legacy-"):
            return self.version.removeprefix("legacy-")
        major, minor = self.version.split(".")[:2]
        return f"{major}{minor}"

    def describe(self) -> str:
        """``10.30.1 (stable, sha256 0123456789ab…)`` for the report and `invoke status`."""
        known = [self.provenance[k] for k in ("channel",) if k in self.provenance]
        if "sha256" in self.provenance:
            known.append(f"sha256 {self.provenance['sha256'][:12]}…")
        if self.legacy:
            known.append("installed before builds were kept")
        return f"{self.version} ({', '.join(known)})" if known else self.version


def legacy_name(directory: str, provenance: dict[str, str]) -> str:
    """What a build at ``ibgateway/<major>`` is called: its recorded version, else
    ``legacy-<major>`` (the same rule as ``link``'s shell, which moves it under that name)."""
    version = provenance.get("version", "")
    return version if _NAME.fullmatch(version) else f"legacy-{directory.rsplit('/', 1)[-1]}"


@dataclass
class Inventory:
    """Every build on a host, the links IBC follows, the history and the room for another."""

    arch: str = ""
    free_mb: int = 0
    builds: list[Build] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # major -> build directory
    history: list[str] = field(default_factory=list)  # versions, oldest first

    def by_version(self, version: str) -> Build | None:
        return next((b for b in self.builds if b.version == version), None)

    def running(self, major: str, home: str) -> Build | None:
        """The build the unit starts: the one ``ibgateway/<major>`` leads to."""
        target = self.links.get(major, Layout.gateway_dir(home, major))
        return next((b for b in self.builds if b.path == target), None)

    def previous(self, running: Build | None) -> Build | None:
        """The build that ran last before ``running`` and is still there."""
        for version in reversed(self.history):
            found = self.by_version(version)
            if found is not None and found != running:
                return found
        return None

    def kept(self, running: Build | None) -> list[Build]:
        """Every build but the running one, the most recently run first (never-run last)."""
        order = {v: i for i, v in enumerate(self.history)}
        others = [b for b in self.builds if b != running]
        return sorted(others, key=lambda b: order.get(b.version, -1), reverse=True)


def parse_inventory(text: str) -> Inventory:
    """The script's output as an Inventory; unknown lines are skipped."""
    inv = Inventory()
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        path, _, more = rest.strip().partition(" ")
        if key == "ARCH":
            inv.arch = rest.strip()
        elif key == "FREE_KB" and rest.strip().isdigit():
            inv.free_mb = int(rest) // 1024
        elif key == "BUILD" and path:
            inv.builds.append(Build(path.rsplit("/", 1)[-1], path, parse_provenance(more)))
        elif key == "LEGACY" and path:
            provenance = parse_provenance(more)
            inv.builds.append(Build(legacy_name(path, provenance), path, provenance, legacy=True))
        elif key == "LINK" and path and more:
            inv.links[path] = more.strip()
        elif key == "RAN" and more:
            inv.history.append(more.strip())
    return inv


def inventory_command(home: str) -> str:
    """The shell command that prints what ``parse_inventory`` reads (run as root)."""
    env = {"HOME_DIR": home, "BUILDS": Layout.builds_dir(home),
           "LINKS": Layout.gateway_builds(home),
           "HISTORY": Layout.build_history(home), "PROVENANCE": PROVENANCE_FILE}
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assigns} sh -c {shlex.quote(_SCRIPT)}"


def need_mb(installer_bytes: int) -> int:
    """Free space a second build needs in the service user's home (``UNPACK_FACTOR``)."""
    return UNPACK_FACTOR * (installer_bytes // (1024 * 1024) + 1) + MIN_DISK_MB


def check_upgrade(installer: GatewayInstaller, inv: Inventory, running: Build | None, *,
                  pin: str | None, minimum: gatewayversion.Version, size: int,
                  home: str) -> None:
    """Every refusal before anything is copied: one UsageError line each, the running build
    untouched. ``minimum`` is the operator's IBKR_GATEWAY_MIN_VERSION or the known one."""
    check_fits(installer, pin, installer.tws_major_vrsn)
    check_arch(installer, inv.arch)
    new = gatewayversion.parse(installer.version)
    if new.below(minimum):
        raise UsageError(f"{installer.path.name} is IB Gateway {installer.version}, below the "
                         f"minimum supported version {minimum} (IBKR refuses its logins); "
                         "download IBKR's current offline installer")
    if running is not None and (running.version == installer.version
                                or running.provenance.get("sha256") == installer.sha256):
        raise UsageError(f"{installer.path.name} is IB Gateway {installer.version}, the build "
                         "already running; nothing to upgrade (`--rollback` goes back to the "
                         "previous build)")
    needed = need_mb(size)
    if inv.free_mb < needed:
        raise UsageError(f"only {inv.free_mb} MB free in {home}; a second build beside the "
                         f"running one needs about {needed} MB: free space there first")


def prune_choice(inv: Inventory, running: Build | None, keep: int) -> list[Build]:
    """What a successful switch removes: all but the running build and the ``keep - 1``
    most recently run others."""
    return inv.kept(running)[max(keep - 1, 0):]


def check_keep(value: str | int) -> int:
    """``--keep-builds``: how many builds stay (the running one counted), 1 to 20."""
    try:
        keep = int(value)
    except ValueError:
        keep = 0
    if not 1 <= keep <= 20:
        raise UsageError(f"--keep-builds {value!r}: give 1 to 20 builds to keep (the running "
                         "one counted; 1 leaves nothing to roll back to)")
    return keep


# Shell ----------------------------------------------------------------------------------------
def link(home: str, major: str, target: str, user: str) -> str:
    """Point ``ibgateway/<major>`` at ``target`` in one rename; a real directory there (a build
    from before builds were kept) moves into ``builds/`` first under ``legacy_name``'s name
    (and is the target there, if it was the target: the old place now names the link's
    target)."""
    here = shlex.quote(Layout.gateway_dir(home, major))
    builds, owner = shlex.quote(Layout.builds_dir(home)), shlex.quote(f"{user}:{user}")
    links = shlex.quote(Layout.gateway_builds(home))
    return (f"t={shlex.quote(target)}; runuser -u {shlex.quote(user)} -- mkdir -p {builds} "
            f"{links}; "
            f"if [ -d {here} ] && [ ! -L {here} ]; then "
            f"v=$(sed -n 's/.*version=\\([0-9][0-9a-z.]*\\).*/\\1/p' {here}/{PROVENANCE_FILE} "
            f"2>/dev/null); [ -n \"$v\" ] || v=legacy-{major}; "
            f"if [ -e {builds}/\"$v\" ]; then v=\"$v-legacy\"; fi; mv {here} {builds}/\"$v\"; "
            f"if [ \"$t\" = {here} ]; then t={builds}/\"$v\"; fi; fi; "
            f"if [ \"$t\" = {here} ]; then t=$(readlink {here}); fi; "
            f"ln -sfn \"$t\" {here}.ibkr-ops-new && "
            f"chown -h {owner} {here}.ibkr-ops-new && mv -T {here}.ibkr-ops-new {here}")


def switch_command(home: str, major: str, target: str, user: str,
                   layouts: Sequence[Layout]) -> str:
    """The switch itself: stop every Gateway of the installation (each logs out), point the
    link, start the first (a cold start: a full login). The link moves only while no Gateway
    runs from it; the others start one after another, each once the one before is ready, so
    that their logins never overlap."""
    units = [layout.gateway_unit for layout in layouts]
    return (f"{systemctl.control('stop', units)} && {link(home, major, target, user)} && "
            f"{systemctl.afresh('start', units[0])}")


def record(home: str, version: str, user: str) -> str:
    """Append ``version`` to the history: the build the Gateway now runs."""
    history = shlex.quote(Layout.build_history(home))
    line = shlex.quote(f"{int(time.time())} {version}")
    return (f"printf '%s\\n' {line} >> {history} && "
            f"chown {shlex.quote(user)}:{shlex.quote(user)} {history}")


def remove(builds: list[Build], inv: Inventory, home: str) -> str:
    """Remove builds and every link that leads to one of them."""
    paths = {b.path for b in builds}
    links = [Layout.gateway_dir(home, m) for m, target in inv.links.items() if target in paths]
    return "rm -rf -- " + " ".join(shlex.quote(p) for p in sorted(paths | set(links)))


def describe(inv: Inventory, running: Build | None) -> list[str]:
    """`invoke status`'s lines: the running build and the kept ones, with their provenance."""
    kept = inv.kept(running)
    return [f"IB Gateway build running: {running.describe() if running else 'none found'}",
            "IB Gateway builds kept: " + (", ".join(b.describe() for b in kept) or "none")]

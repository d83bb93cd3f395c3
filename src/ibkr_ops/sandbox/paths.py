"""Where the sandbox keeps things: the cached base tree and the guests' state.

Both live outside the repository (they are large and root-owned) and can be moved with
environment variables, which is how tests point the sandbox at a scratch or broken tree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops.errors import UsageError

CACHE_ENV = "IBKR_OPS_SANDBOX_CACHE"
STATE_ENV = "IBKR_OPS_SANDBOX_DIR"
DEFAULT_CACHE = Path("/var/cache/ibkr-ops/sandbox")
DEFAULT_STATE = Path("/var/lib/ibkr-ops/sandbox")

#: Guest names become host names, machine names and parts of namespace and cgroup names.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,19}")
#: Network namespaces and cgroups carry this prefix so that nothing else is ever touched.
RESOURCE_PREFIX = "ibkr-sbx-"


def check_name(name: str) -> str:
    """Return `name` if it can name a guest, else say what a valid name looks like."""
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"bad sandbox name {name!r}: use 1-20 lowercase letters, digits or '-', "
            "starting with a letter"
        )
    return name


@dataclass(frozen=True)
class GuestPaths:
    """The files of one guest under the state directory."""

    dir: Path

    @property
    def record(self) -> Path:
        return self.dir / "guest.json"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def supervisor_pid(self) -> Path:
        return self.dir / "supervisor.pid"

    @property
    def nspawn_pid(self) -> Path:
        return self.dir / "nspawn.pid"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"


@dataclass(frozen=True)
class Layout:
    """The cache and state directories in effect for this process."""

    cache: Path
    state: Path

    @property
    def base(self) -> Path:
        return self.cache / "base-bookworm"

    @property
    def base_stamp(self) -> Path:
        return self.cache / "base-bookworm.json"

    @property
    def base_log(self) -> Path:
        return self.cache / "base-bookworm.log"

    @property
    def guests_dir(self) -> Path:
        return self.state / "guests"

    @property
    def identity_file(self) -> Path:
        return self.state / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.state / "ssh_config"

    @property
    def lock(self) -> Path:
        return self.state / "lock"

    def guest(self, name: str) -> GuestPaths:
        return GuestPaths(self.guests_dir / check_name(name))


def layout() -> Layout:
    """Read the directories from the environment, falling back to the system defaults."""
    return Layout(
        cache=Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE),
        state=Path(os.environ.get(STATE_ENV) or DEFAULT_STATE),
    )

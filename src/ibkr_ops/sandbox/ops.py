"""Orchestration over several guests: `up`, `down`, `reboot` and the listing.

Changes run under one lock so that two invocations never allocate the same address or
tear down a guest the other is starting.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.sandbox import base, lifecycle, network, records, runtime, ssh, system
from ibkr_ops.sandbox.paths import Layout, check_name, layout
from ibkr_ops.sandbox.progress import say

DEFAULT_PREFIX = "sbx"


@dataclass(frozen=True)
class Guest:
    """How to reach one guest (the `sandbox.list --json` contract) and its state."""

    name: str
    host: str
    port: int
    user: str
    identity_file: str
    ssh_config: str
    known_hosts: str
    state: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def names_for(name: str | None, count: int) -> list[str]:
    """Guest names for `up`: NAME alone, or NAME1..NAMEn (default prefix `sbx`) for a count."""
    if count < 1:
        raise UsageError(f"--count must be at least 1, not {count}")
    if name is not None and count == 1:
        return [check_name(name)]
    prefix = name or DEFAULT_PREFIX
    return [check_name(f"{prefix}{i}") for i in range(1, count + 1)]


def state_of(where: Layout, name: str) -> str:
    """`stopped`, `booting`, or what `systemctl is-system-running` says in the guest."""
    files = where.guest(name)
    if lifecycle.supervisor_pid(files) is None:
        return "stopped"
    leader = lifecycle.leader_pid(files)
    return (runtime.system_state(leader) if leader else None) or "booting"


def guests(where: Layout | None = None) -> list[Guest]:
    """Every recorded guest with its address, SSH files and live state."""
    where = where or layout()
    return [
        Guest(
            name=r.name, host=r.address, port=ssh.PORT, user=ssh.USER,
            identity_file=str(where.identity_file), ssh_config=str(where.ssh_config),
            known_hosts=str(where.known_hosts), state=state_of(where, r.name),
        )
        for r in records.load_all(where)
    ]


@contextmanager
def _locked(where: Layout) -> Iterator[None]:
    where.state.mkdir(parents=True, exist_ok=True)
    with where.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _refresh_ssh_files(where: Layout) -> None:
    ssh.write_files(where, ((r.name, r.address, r.host_key) for r in records.load_all(where)))


def up(names: list[str], where: Layout | None = None) -> list[Guest]:
    """Start the named guests (creating them as needed) and wait until SSH answers.

    Guests already up are left alone. A guest that fails to come up is torn down and the
    failure reported; the others stay up.
    """
    where = where or layout()
    system.require_root()
    system.ensure_tools()
    with _locked(where):
        known = {r.name: r for r in records.load_all(where)}
        base.ensure_base(where, guests_exist=bool(known))
        ssh.ensure_client_key(where)
        for name in names:
            if name not in known:
                used = {r.index for r in known.values()} | network.slots_in_use()
                known[name] = lifecycle.create(where, name, records.free_index(used))
        _refresh_ssh_files(where)
        failures = _start_all(where, [known[name] for name in names])
        if failures:
            for name in failures:
                lifecycle.destroy(where, name)
            _refresh_ssh_files(where)
            detail = "; ".join(f"{name}: {why}" for name, why in failures.items())
            raise OpsError(f"sandbox guests failed to start and were removed: {detail}")
    wanted = set(names)
    return [guest for guest in guests(where) if guest.name in wanted]


def _start_all(where: Layout, wanted: list[records.GuestRecord]) -> dict[str, str]:
    """Start every guest first (they boot in parallel), then wait for each in turn."""
    failures: dict[str, str] = {}
    started: dict[str, list[str]] = {}
    for record in wanted:
        try:
            started[record.name] = lifecycle.start(where, record)
        except OpsError as error:
            failures[record.name] = str(error)
    for record in wanted:
        if record.name in failures:
            continue
        try:
            state = lifecycle.wait_up(where, record)
        except OpsError as error:
            failures[record.name] = str(error)
            continue
        if started[record.name]:
            say(f"{record.name}: up ({state}) at {record.address}; "
                f"started {', '.join(started[record.name])}")
        else:
            say(f"{record.name}: already up ({state}) at {record.address}; nothing changed")
    return failures


def _leftover_names(where: Layout) -> set[str]:
    """Guests known by a directory, including half-made ones without a record."""
    if not where.guests_dir.is_dir():
        return set()
    return {d.name for d in where.guests_dir.iterdir() if d.is_dir()}


def down(name: str | None = None, where: Layout | None = None) -> list[str]:
    """Stop and remove one guest, or all of them; the cached base tree stays. Return names."""
    where = where or layout()
    system.require_root()
    with _locked(where):
        present = _leftover_names(where)
        targets = sorted(present if name is None else {check_name(name)} & present)
        for target in targets:
            lifecycle.destroy(where, target)
            say(f"{target}: stopped and removed")
        _refresh_ssh_files(where)
    if not targets:
        say("no sandbox guests to remove; nothing changed")
    return targets


def require(name: str, where: Layout | None = None) -> Guest:
    """The recorded guest `name`, or one line saying how to start it."""
    for guest in guests(where):
        if guest.name == name:
            return guest
    raise OpsError(f"no sandbox named {name}; start it with `invoke sandbox.up --name {name}`")


def reboot(name: str, where: Layout | None = None) -> str:
    """Reboot a running guest from inside (`systemctl reboot`) and wait until it is back."""
    where = where or layout()
    system.require_root()
    with _locked(where):
        record = records.load(where, check_name(name))
        files = where.guest(name)
        leader = lifecycle.leader_pid(files) if record else None
        if record is None or leader is None:
            raise OpsError(f"sandbox {name} is not running; start it with "
                           f"`invoke sandbox.up --name {name}`")
        runtime.inside(leader, ["systemctl", "reboot"])
        state = lifecycle.wait_up(where, record, after_leader=leader)
    say(f"{name}: rebooted ({state})")
    return state

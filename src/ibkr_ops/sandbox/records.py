"""What the sandbox remembers about each guest (its index, hence its address, and host key).

Everything else (is it running, which pid) is read from the live system, so a record can
never claim a guest is up when it is not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox import network
from ibkr_ops.sandbox.paths import Layout


@dataclass(frozen=True)
class GuestRecord:
    """A guest as created: its name, its network slot and its host's public key."""

    name: str
    index: int
    host_key: str

    @property
    def address(self) -> str:
        return network.guest_address(self.index)


def load(layout: Layout, name: str) -> GuestRecord | None:
    """The guest's record, or None when there is no such guest (or it was never finished)."""
    try:
        return GuestRecord(**json.loads(layout.guest(name).record.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        where = layout.guest(name).record
        raise OpsError(f"unreadable sandbox record {where} ({error}); "
                       f"run `invoke sandbox.down --name {name}`") from None


def load_all(layout: Layout) -> list[GuestRecord]:
    """Every recorded guest, by name."""
    if not layout.guests_dir.is_dir():
        return []
    found = (load(layout, d.name) for d in sorted(layout.guests_dir.iterdir()) if d.is_dir())
    return [record for record in found if record is not None]


def save(layout: Layout, record: GuestRecord) -> None:
    """Write the record last, once the guest's files exist (written atomically)."""
    path = layout.guest(record.name).record
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    tmp.replace(path)


def free_index(used: set[int]) -> int:
    """The lowest network slot not in `used`."""
    for index in range(1, network.MAX_INDEX + 1):
        if index not in used:
            return index
    raise OpsError(f"all {network.MAX_INDEX} sandbox slots are in use; remove some guests")

"""Parsers of the command output the checks read. Pure, so they are tested on recorded output."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any


def systemctl_show(text: str) -> list[dict[str, str]]:
    """`systemctl show -p ... UNIT...`: one property dict per unit, in the order asked."""
    units: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        units.append(props)
    return units


def processes(text: str) -> dict[int, tuple[str, str]]:
    """`ps -eo pid=,user:32=,args=`: PID -> (user, command line)."""
    table: dict[int, tuple[str, str]] = {}
    for line in text.splitlines():
        pid, user, args = [*line.split(None, 2), "", ""][:3]
        if pid.isdigit():
            table[int(pid)] = (user, args)
    return table


def gateway_jvms(table: dict[int, tuple[str, str]]) -> dict[int, str]:
    """PID -> user of the Gateway's JVMs (a command line with both `java` and `ibgateway`)."""
    return {pid: user for pid, (user, args) in table.items()
            if "java" in args and "ibgateway" in args and "ps -eo" not in args}


def unit_pids(text: str, unit: str) -> set[int]:
    """`ps -eo pid=,unit:100=`: the PIDs systemd counts in ``unit``."""
    return {int(fields[0]) for fields in (line.split() for line in text.splitlines())
            if len(fields) == 2 and fields[0].isdigit() and fields[1] == unit}


def listening_tcp(text: str) -> set[tuple[str, int]]:
    """`ss -Hltn`: (address, port) of every listening TCP socket; `*` is both wildcards,
    as testinfra reads it, so a dual-stack socket counts as listening on every address."""
    found: set[tuple[str, int]] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] != "LISTEN":
            continue
        address, _, port = fields[3].rpartition(":")
        if not port.isdigit():
            continue
        address = address.removeprefix("[").removesuffix("]").split("%", 1)[0]
        if address == "*":
            found |= {("::", int(port)), ("0.0.0.0", int(port))}  # noqa: S104 - a reading
        else:
            found.add((address, int(port)))
    return found


def next_elapse(text: str) -> dt.datetime | None:
    """`TZ=UTC systemctl show -p NextElapseUSecRealtime --value TIMER`: when, or None."""
    value = text.strip()
    if not value or value == "n/a":
        return None
    return dt.datetime.strptime(value, "%a %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class FileInfo:
    """What `stat -c '%F|%a|%U|%G'` says about a path."""

    kind: str
    mode: int
    user: str
    group: str

    @property
    def is_file(self) -> bool:
        return self.kind in ("regular file", "regular empty file")


def stat_line(text: str) -> FileInfo | None:
    """Parse one `stat -c '%F|%a|%U|%G'` line; None when stat printed nothing usable."""
    parts = text.strip().split("|")
    if len(parts) != 4:
        return None
    kind, mode, user, group = parts
    return FileInfo(kind, int(mode, 8), user, group)


def health_report(text: str) -> dict[str, Any] | None:
    """`ibkr-health-check --json`'s object, or None when the output is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

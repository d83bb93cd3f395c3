"""One structured line per run in the systemd journal, through its native datagram socket.

Why the socket and not stdout: the tools also run by hand over SSH (`invoke health-check`),
and those runs belong in the journal too; the native protocol carries a priority (so a
failure shows as an error in `journalctl -p err`) and fields such as IBKR_HEALTHY that
`journalctl IBKR_HEALTHY=0` can select. When stdout is itself the journal (the tool runs
as a service), `stdout_is_journal()` lets the caller stay quiet to avoid a duplicate line.
"""

from __future__ import annotations

import os
import socket
import sys

SOCKET = "/run/systemd/journal/socket"

ERR, WARNING, INFO = 3, 4, 6


def send(identifier: str, message: str, priority: int = INFO, **fields: str) -> bool:
    """Write one entry; False when there is no journal (not a systemd host), never raises."""
    entry = {"MESSAGE": message, "PRIORITY": str(priority), "SYSLOG_IDENTIFIER": identifier,
             **{k.upper(): v for k, v in fields.items()}}
    # One line per field: newlines inside a value would need the binary form; flatten them.
    data = "".join(f"{k}={v.replace(chr(10), ' ')}\n" for k, v in entry.items()).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, os.environ.get("IBKR_OPS_JOURNAL_SOCKET", SOCKET))
    except OSError:
        return False
    return True


def stdout_is_journal() -> bool:
    """True when systemd connected our stdout to the journal ($JOURNAL_STREAM = dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"

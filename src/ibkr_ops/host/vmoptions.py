"""The Gateway's JVM options file (``ibgateway.vmoptions``): the heap ceiling (``-Xmx``).

The installer writes ``-Xmx768m``, and out-of-memory reports with that heap are common; IBC's
``ibcstart.sh`` passes every line of the file (except comments and ``-D`` lines) to java. The
installation may be replaced by a new installer run, so the heap is set just before each start
(the unit's ExecStartPre), changing only the ``-Xmx`` line and keeping every other line, its
mode and owner. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ibkr_ops.errors import OpsError

PREFIX = "-Xmx"


def with_heap(text: str, heap_mb: int) -> str:
    """``text`` with each ``-Xmx`` line set to ``heap_mb`` (one appended if there is none)."""
    option = f"{PREFIX}{heap_mb}m"
    lines = text.splitlines(keepends=True)
    found = False
    for i, line in enumerate(lines):
        if line.strip().startswith(PREFIX):
            ending = line[len(line.rstrip("\r\n")):]
            lines[i] = option + (ending or "\n")
            found = True
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(option + "\n")
    return "".join(lines)


def set_heap(path: Path, heap_mb: int) -> bool | None:
    """Rewrite the file in one rename when its heap differs; True when it changed.

    None when the file does not exist: ``ibcstart.sh`` then refuses to start with its own exit
    status (7), which the unit does not retry, instead of this step failing on every retry.
    """
    try:
        old = path.read_text(encoding="utf-8")
        info = path.stat()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise OpsError(f"cannot read {path}: {exc}") from None
    new = with_heap(old, heap_mb)
    if new == old:
        return False
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
        os.chmod(tmp, info.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):  # as the service user: already its own
            os.chown(tmp, info.st_uid, info.st_gid)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise OpsError(f"cannot write {path}: {exc.strerror or exc}") from None
    return True


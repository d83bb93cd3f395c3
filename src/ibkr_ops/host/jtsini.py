"""The Gateway's own settings file (``jts.ini``): which API clients it trusts.

The Gateway keeps them in ``[IBGateway] TrustedIPs=`` of jts.ini, a file it also rewrites
itself, so the list is set just before each start (the unit's ExecStartPre), line by line,
leaving every other line the Gateway wrote as it was. IBC then reads the file with its own
``JtsIniManager`` and replaces the line with "127.0.0.1" plus its ``TrustedTwsApiClientIPs``
(despite its documentation, FIX or not): config.ini carries the same list, in the same order,
so both write the same line. Standard library only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ibkr_ops.errors import OpsError

SECTION = "[IBGateway]"
KEY = "TrustedIPs"


def with_trusted_ips(text: str, trusted: list[str]) -> str:
    """``text`` with ``[IBGateway] TrustedIPs`` set, the rest untouched."""
    line = f"{KEY}={','.join(trusted)}"
    lines = text.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == SECTION)
    except StopIteration:
        return "\n".join([*lines, SECTION, line]).lstrip("\n") + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if lines[i].split("=", 1)[0].strip() == KEY:
            lines[i] = line
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, line)
    return "\n".join(lines) + "\n"


def set_trusted_ips(path: Path, trusted: list[str]) -> bool:
    """Rewrite jts.ini in one rename when its list differs; True when it changed."""
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise OpsError(f"cannot read {path}: {exc}") from None
    new = with_trusted_ips(old, trusted)
    if new == old:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".jts.ini.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
        os.replace(tmp, path)
    except OSError as exc:
        raise OpsError(f"cannot write {path}: {exc.strerror or exc}") from None
    return True

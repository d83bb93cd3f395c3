"""`invoke screenshot`: the host's ibkr-screenshot run over SSH, its PNG written here.

The picture is taken and encoded on the host (xwd, one-shot, nothing left running) and
travels as base64 inside one JSON line; it is written here atomically with mode 0600, since
a Gateway screen can show account numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host.screen import Window
from ibkr_ops.layout import DEFAULT, SCREENSHOT
from ibkr_ops.remote.primitives import Host

TOOL = DEFAULT.tool(SCREENSHOT)


@dataclass(frozen=True)
class Shot:
    """A screenshot as the host took it."""

    display: str
    width: int
    height: int
    windows: tuple[Window, ...]
    png: bytes


def parse_shot(text: str) -> Shot:
    """The tool's JSON line as a `Shot`; anything else is an OpsError saying so."""
    try:
        data = json.loads(text)
        windows = tuple(Window(**w) for w in data["windows"])
        return Shot(str(data["display"]), int(data["width"]), int(data["height"]), windows,
                    base64.b64decode(data["png"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise OpsError(f"ibkr-screenshot's output is not what this version reads ({exc}); "
                       "run `invoke install` to update the host tools") from None


def take(host: Host) -> Shot:
    """Run the host's screenshot tool; no root needed, the display accepts local clients."""
    result = host.conn.run(f"{TOOL} --json", hide=True, warn=True, in_stream=False, timeout=60)
    if result.exited == 127:
        raise OpsError(f"{host.name} has no {TOOL}; run `invoke install` again to add it")
    if not result.ok:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise OpsError(lines[-1] if lines else f"{TOOL} failed (exit {result.exited})")
    return parse_shot(result.stdout)


def check_out(path: Path) -> Path:
    """Refuse an --out the PNG could not be written to, before any host is contacted."""
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"--out {path} is a directory; give a file name such as gw1.png")
    return path


def write_png(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 (a Gateway screen can show account numbers)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

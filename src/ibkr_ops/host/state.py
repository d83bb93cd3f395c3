"""Small JSON state files under state_dir, written atomically (temp file + rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ibkr_ops.errors import OpsError


def read_state(path: Path) -> dict[str, Any] | None:
    """The stored object, or None when there is none or it is unreadable (start afresh)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Replace the file in one step, so a crash never leaves half a state behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise OpsError(f"cannot write state {path}: {exc.strerror or exc}") from None


T = TypeVar("T")


def read_fields(cls: Callable[..., T], fields: Iterable[str], path: Path) -> T:
    """A dataclass from its state file: unknown keys (an older or newer tool) are dropped, and
    anything that does not fit starts afresh rather than stopping the tool."""
    data = read_state(path) or {}
    known = set(fields)
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return cls()

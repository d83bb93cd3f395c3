"""Reader for systemd ``EnvironmentFile=`` files (``/etc/ibkr/credentials.env``).

Standard library only: the host-side tools and the operator-side settings read the same file
with the same rules, so a file that works for one works for the other. Errors name the line,
never the value, because the values are secrets.
"""

from __future__ import annotations

import re
from pathlib import Path

from ibkr_ops.errors import UsageError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env(text: str, source: str = "credentials file") -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines with optional quotes, ``#``/``;`` comments and blank lines."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        where = f"{source}, line {number}"
        if not sep:
            raise UsageError(f"{where}: expected KEY=VALUE (no '=' found); fix or comment it out")
        if not _KEY.fullmatch(key):
            raise UsageError(f"{where}: {key[:40]!r} is not a valid variable name")
        if key in values:
            raise UsageError(f"{where}: {key} is set twice; keep one")
        values[key] = _unquote(value.strip(), where)
    return values


def _unquote(value: str, where: str) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        if len(value) < 2 or value[-1] != quote:
            raise UsageError(f"{where}: unterminated {quote} quote; close it on the same line")
        inner = value[1:-1]
        if quote == '"':
            inner = re.sub(r"\\(.)", r"\1", inner)
        return inner
    return value


def read_env_file(path: Path, *, private: bool = True) -> dict[str, str]:
    """Read an environment file; with ``private`` refuse one that group or others can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; give the path of your credentials.env") from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({type(exc).__name__}); check the file") from None
    if private and mode & 0o077:
        raise UsageError(
            f"{path}: readable by group or others (mode {mode & 0o777:o}); run: chmod 600 {path}"
        )
    return parse_env(text, str(path))

"""systemd ``EnvironmentFile=`` files (``credentials.env``): the one home of the format.

``parse_env`` reads a file exactly as systemd does (``parse_env_file_internal`` in its
src/basic/env-file.c): ``KEY=value`` with blanks around it dropped, ``'single'`` quotes taken
literally, ``"double"`` quotes where a backslash escapes ``"``, ``\\``, `` ` `` and ``$``, a
backslash continuing an unquoted value, CR as a line end (so Windows files read the same),
``#``/``;`` comments on lines of their own. Where systemd would quietly read something other
than what the file seems to say (a line it ignores, a byte-order mark glued to the first key,
text after a closing quote, an unquoted backslash it drops, a comment whose trailing
backslash systemd 252 and 254 read differently) the file is refused with one line naming the
line, never the value, because the values are secrets. ``quote`` and ``format_env`` write
what both read back identically; ``comment_lines`` and ``example_line`` write the template's
lines. Standard library only: the host tools and the operator side share it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops.errors import UsageError
from ibkr_ops.host import textfile

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_WHITESPACE = " \t\n\r"
_NEWLINE = "\n\r"
_SHELL_NEED_ESCAPE = '"\\`$'
_NO_EQUALS = "expected KEY=VALUE (no '=' after a name), which systemd ignores; fix the line " \
             "or comment it out"
# A credentials file is a few kilobytes; a device or a runaway file is refused, not read.
MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Entry:
    """One assignment: the value as systemd reads it, and where its text is in the file."""

    key: str
    value: str
    line: int
    value_start: int
    value_end: int


class _Refusal(Exception):
    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def parse_env(text: str, source: str = "credentials file") -> dict[str, str]:
    """``KEY -> value`` as systemd reads ``text``; anything it would read otherwise than the
    file suggests is a UsageError naming the line and the fix."""
    values: dict[str, str] = {}
    try:
        for entry in scan(text, strict=True):
            if entry.key in values:
                raise _Refusal(entry.value_start, f"{entry.key} is set twice; keep one")
            values[entry.key] = entry.value
    except _Refusal as refusal:
        line = text.count("\n", 0, refusal.position) + 1
        raise UsageError(f"{source}, line {line}: {refusal.message}") from None
    return values


def scan(text: str, *, strict: bool = False) -> list[Entry]:  # noqa: PLR0912, PLR0915
    """The assignments of ``text``, by systemd's state machine; ``strict`` raises at the first
    place systemd would read differently from what the file shows (see the module)."""
    if text.startswith("\ufeff") and strict:
        raise _Refusal(0, "the file starts with a byte-order mark (BOM), which systemd reads "
                          "as part of the first key and then ignores that line; save it as "
                          "UTF-8 without BOM")
    if "\0" in text and strict:
        raise _Refusal(text.index("\0"), "a NUL byte: systemd stops reading the file there")
    entries: list[Entry] = []
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    key_start = value_start = quote_start = 0
    last_value_ws: int | None = None
    last_key_ws: int | None = None
    after_quote = False

    def push(end: int, strip_value: bool) -> None:
        name = "".join(key[:last_key_ws] if last_key_ws is not None else key)
        chars = value[:last_value_ws] if strip_value and last_value_ws is not None else value
        if strict and not _KEY.fullmatch(name):
            hint = (": remove 'export', systemd does not take it" if name.startswith("export ")
                    else "; systemd ignores the line")
            raise _Refusal(key_start, f"{name[:40]!r} is not a valid variable name{hint}")
        entries.append(Entry(name, "".join(chars), text.count("\n", 0, key_start) + 1,
                             value_start, end))

    for position, char in enumerate(text):
        if state == "pre_key":
            if char in "#;":
                state = "comment"
            elif char not in _WHITESPACE:
                state, key, key_start, last_key_ws = "key", [char], position, None
        elif state == "key":
            if char in _NEWLINE:
                if strict:
                    raise _Refusal(key_start, _NO_EQUALS)
                state = "pre_key"
            elif char == "=":
                state, value, value_start, last_value_ws = "pre_value", [], position + 1, None
                after_quote = False
            else:
                last_key_ws = _append(key, char, last_key_ws)
        elif state == "pre_value":
            if char in _NEWLINE:
                push(position, False)
                state = "pre_key"
            elif after_quote and char not in _WHITESPACE and strict:
                raise _Refusal(position, "text after the closing quote, which systemd adds to "
                                         "the value; put a comment on a line of its own")
            elif char in "'\"":
                state, quote_start = ("single" if char == "'" else "double"), position
            elif char == "\\":
                state = "value_escape"
            elif char not in _WHITESPACE:
                state = "value"
                value.append(char)
        elif state == "value":
            if char in _NEWLINE:
                push(position, True)
                state = "pre_key"
            elif char == "\\":
                state, last_value_ws = "value_escape", None
            else:
                last_value_ws = _append(value, char, last_value_ws)
        elif state == "value_escape":
            state = "value"
            if char not in _NEWLINE:
                if strict:
                    raise _Refusal(position, "an unquoted backslash, which systemd drops (a\\b "
                                             "reads as ab); put the value in 'single quotes'")
                value.append(char)
        elif state == "single":
            if char == "'":
                state, after_quote = "pre_value", True
            else:
                value.append(char)
        elif state == "double":
            if char == '"':
                state, after_quote = "pre_value", True
            elif char == "\\":
                state = "double_escape"
            else:
                value.append(char)
        elif state == "double_escape":
            state = "double"
            if char in _SHELL_NEED_ESCAPE:
                value.append(char)
            elif char != "\n":
                value += ["\\", char]
        elif state == "comment":
            if char == "\\":
                state = "comment_escape"
            elif char in _NEWLINE:
                state = "pre_key"
        elif state == "comment_escape":
            # systemd 252 (Debian 12) reads on in the comment; 254 and later end it here.
            if char in _NEWLINE and strict:
                raise _Refusal(position, "a comment ends in a backslash: systemd 252 also "
                                         "ignores the next line, 254 and later do not; "
                                         "remove the backslash")
            state = "comment"
    if state in ("single", "double", "double_escape") and strict:
        raise _Refusal(quote_start, "this quote is never closed; systemd would take the rest "
                                    "of the file as the value: close it")
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        push(len(text), state == "value")
    elif state == "key" and strict:
        raise _Refusal(key_start, _NO_EQUALS)
    return entries


def mask(text: str, keys: Collection[str], changed: Collection[str] = (),
         shown: str = "********") -> tuple[str, dict[str, str]]:
    """``text`` with the value of each of ``keys`` replaced by ``shown`` (``+ " (changed)"``
    for ``changed`` keys), quotes and continuation lines included, and the masked values as
    written. Lenient: a host's current file is masked whatever state it is in."""
    values: dict[str, str] = {}
    out, done = [], 0
    for entry in scan(text):
        key = entry.key.lstrip("\ufeff")
        span = text[entry.value_start:entry.value_end]
        start = entry.value_start + len(span) - len(span.lstrip(" \t"))
        if key in keys and start >= done:
            values[key] = text[start:entry.value_end]
            label = shown + (" (changed)" if key in changed else "")
            out += [text[done:start], label]
            done = entry.value_end
    return "".join([*out, text[done:]]), values


def _append(chars: list[str], char: str, trailing: int | None) -> int | None:
    """Append ``char``; return where the trailing blanks start (systemd chomps them)."""
    chars.append(char)
    if char not in _WHITESPACE:
        return None
    return len(chars) - 1 if trailing is None else trailing


def quote(value: str) -> str:
    """``value`` as a systemd value that reads back exactly: plain when it is all safe
    characters, else in double quotes with ``"`` and ``\\`` escaped."""
    if "\0" in value:
        raise ValueError("a NUL character cannot be carried by an environment file")
    if _PLAIN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_env(items: Iterable[tuple[str, str]], header: Iterable[str] = ()) -> str:
    """A whole file: ``# header`` lines, then one ``KEY=value`` per item."""
    lines = comment_lines("\n".join(header))
    lines += [f"{key}={quote(value)}" for key, value in items]
    return "\n".join(lines) + "\n"


def comment_lines(text: str) -> list[str]:
    """``text`` as comment lines (``#`` alone for an empty line). A line ending in a backslash
    is refused: systemd 252 would read the next line as part of the comment, 254 would not."""
    lines = text.splitlines()
    if any(line.endswith("\\") for line in lines):
        raise ValueError("a comment line must not end in a backslash")
    return [f"# {line}" if line else "#" for line in lines]


def example_line(key: str, example: str, *, active: bool) -> str:
    """A template's line for ``key``: ``KEY=example`` to fill in, or ``#KEY=example`` to show
    an optional key. The example is written as a person would type it (never a secret)."""
    return f"{'' if active else '#'}{key}={example}"


def read_env_file(path: Path, *, private: bool = True) -> dict[str, str]:
    """Read an environment file; with ``private`` refuse one that group or others can read.

    Only a regular file of sane size is read, so a named pipe or /dev/zero given by mistake
    is one line, not a hang or an exhausted memory.
    """
    text = textfile.read_text(path, what="credentials.env", max_bytes=MAX_BYTES, private=private)
    return parse_env(text, str(path))

"""Values in files that Java reads with ``java.util.Properties`` (IBC's ``config.ini``).

IBC loads config.ini with ``Properties.load(InputStream)``: ISO-8859-1 bytes, backslash escapes,
``\\uXXXX`` for anything else, leading blanks of a value skipped. It then trims every value it
reads (``Settings.getString`` calls ``String.trim``, which drops everything up to U+0020 at
both ends). So a value is written through ``escape`` and a value that trim would change is
refused by ``trim_problem`` before anything is written: otherwise IBKR gets a different
password and every retry counts toward the account's lockout.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

# Keys of config.ini whose values are secrets.
SECRET_KEYS: Final = ("IbPassword", "FIXPassword")
# A key (up to an unescaped separator), the separator with its blanks, the value.
_ENTRY: Final = re.compile(r"([ \t\f]*)((?:\\.|[^ \t\f=:\\])+)([ \t\f]*[=: \t\f][ \t\f]*)(.*)")


def escape(value: object) -> str:
    """``value`` as Properties.load reads it back exactly: printable ASCII as is, a backslash
    doubled, a leading blank escaped, everything else (Latin-1, the euro sign, CJK, emoji as
    their UTF-16 surrogates, control characters) as ``\\uXXXX``."""
    out = []
    for index, char in enumerate(str(value)):
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == " " and index == 0:
            out.append("\\ ")
        elif 0x20 <= code <= 0x7E:
            out.append(char)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def trim_problem(value: str) -> str | None:
    """Why IBC would not read ``value`` back as written (None when it would)."""
    if value and (ord(value[0]) <= 0x20 or ord(value[-1]) <= 0x20):
        return ("begins or ends with a blank or control character, which IBC strips before "
                "it logs in (IBKR would get a different value)")
    return None



def mask(text: str, keys: Collection[str], changed: Collection[str] = (),
         shown: str = "********") -> tuple[str, dict[str, str]]:
    """``text`` with the value of each of ``keys`` replaced by ``shown`` (``+ " (changed)"``
    for ``changed`` keys), continuation lines included, and the masked values as written.

    Line by line and lenient, so a host's current file is masked whatever state it is in.
    """
    out: list[str] = []
    values: dict[str, str] = {}
    key = ""
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = None if key or body.lstrip(" \t\f")[:1] in ("#", "!") else _ENTRY.fullmatch(body)
        if key:
            values[key] += "\n" + body
            out.append(line[len(body):])
        elif match and match[2] in keys:
            key = match[2]
            values[key] = match[4]
            label = shown + (" (changed)" if key in changed else "")
            out.append(match[1] + match[2] + match[3] + label + line[len(body):])
        else:
            out.append(line)
            continue
        # An odd number of trailing backslashes continues the value on the next line.
        if (len(body) - len(body.rstrip("\\"))) % 2 == 0:
            key = ""
    return "".join(out), values

"""What an install added to a host that was not there before, recorded as it happens.

`uninstall --purge` takes away the packages and the service user an install brought, and
nothing the host had already: only the install knows which those are, at the moment it adds
them. So its apt step compares dpkg's installed packages before and after (dependencies
included, which no plan names), its useradd step notes the user, and both append to one
host-wide record (``Layout.added_record``, lines ``package NAME`` and ``user NAME``). A plain
uninstall leaves the record beside the packages and user it describes, so a later `--purge`
still finds them. Pure: shell text in, parsed record out.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass

from ibkr_ops.layout import Layout


def installed(names: str = "") -> str:
    """A pipeline printing the installed packages (of ``names``, shell words; all when
    empty), one a line: dpkg's "ii" state only, not removed ones whose configuration remains."""
    return (f"dpkg-query -W -f='${{db:Status-Abbrev}}${{Package}}\\n' {names} 2>/dev/null "
            "| sed -n 's/^ii *//p'")


def _append(lines: str) -> str:
    """Merge the lines a command prints into the record: sorted, each once, replaced whole."""
    record = Layout.added_record()
    new = shlex.quote(f"{record}.ibkr-ops-new")
    return (f"install -d -m 0755 {shlex.quote(posixpath.dirname(record))} && "
            f"{{ cat {shlex.quote(record)} 2>/dev/null; {lines}; }} | sort -u > {new} && "
            f"chmod 0644 {new} && mv -f {new} {shlex.quote(record)}")


def recording_packages(apt_command: str) -> str:
    """``apt_command`` (an apt-get install) with every package it newly installed recorded,
    also when it fails half-way (what it did install is then recorded); its status is kept."""
    new = ("{ printf '%s\\n' $before; echo --; printf '%s\\n' $after; } | "
           "awk '$0 == \"--\" {a = 1; next} !a {had[$0] = 1; next} "
           "!had[$0] {print \"package \" $0}'")
    return (f"set -f; before=$({installed()}); {apt_command}; status=$?; "
            f"after=$({installed()}); {_append(new)}; exit $status")


def recording_user(user: str) -> str:
    """Record that the install created the service user ``user`` (run after useradd)."""
    return _append(f"printf 'user %s\\n' {shlex.quote(user)}")


@dataclass(frozen=True)
class Added:
    """The record read back: packages and users the install added, in the record's order."""

    packages: tuple[str, ...] = ()
    users: tuple[str, ...] = ()


def parse(text: str) -> Added:
    """The record's text; lines of another kind are skipped (a later record may add some)."""
    words = [line.split() for line in text.splitlines()]
    return Added(packages=tuple(w[1] for w in words if len(w) == 2 and w[0] == "package"),
                 users=tuple(w[1] for w in words if len(w) == 2 and w[0] == "user"))

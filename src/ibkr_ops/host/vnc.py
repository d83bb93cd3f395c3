"""`ibkr-vnc-server`: the Gateway's display over VNC for one `invoke vnc` session.

It runs as the main process of a transient systemd unit that `invoke vnc` starts and stops
(so the session's bound holds even if the operator's connection dies), and becomes x11vnc
on the display, listening on 127.0.0.1 only. The one-time password arrives on standard
input and reaches x11vnc through a pipe of this process's own making, read once as its
`-passwdfile`: never in argv, the environment, a file or the journal.
"""

from __future__ import annotations

import os
import string
from typing import NoReturn

from ibkr_ops.errors import UsageError

X11VNC = "/usr/bin/x11vnc"
#: x11vnc takes the first free port from here (display number + 5900, VNC's convention).
FIRST_PORT = 5900
#: VNC's password authentication uses the first 8 characters (a DES key) and no more.
PASSWORD_LENGTH = 8
PASSWORD_ALPHABET = string.ascii_letters + string.digits


def x11vnc_argv(display: str, *, interactive: bool) -> list[str]:
    """The x11vnc command line: loopback, IPv4 only, no remote control, no helper commands.
    No MIT-SHM: x11vnc runs as another user than Xvfb, which may not attach its segments."""
    argv = [X11VNC, "-display", display, "-localhost", "-noipv6", "-autoport", str(FIRST_PORT),
            "-passwdfile", "/dev/stdin", "-forever", "-norc", "-nocmds", "-noremote", "-noshm",
            "-quiet"]
    return argv if interactive else [*argv, "-viewonly"]


def check_password(line: str) -> str:
    """The password from its line on stdin; only what `invoke vnc` generates is accepted."""
    password = line.rstrip("\n")
    if len(password) != PASSWORD_LENGTH or any(c not in PASSWORD_ALPHABET for c in password):
        raise UsageError(f"expected an {PASSWORD_LENGTH}-character one-time password (letters "
                         "and digits) on standard input, as `invoke vnc` sends it")
    return password


def serve(display: str, password: str, *, interactive: bool) -> NoReturn:
    """Become x11vnc, its password waiting in a pipe on its standard input."""
    if not os.path.exists(X11VNC):
        raise UsageError(f"{X11VNC} is missing; run `invoke install` again, which installs "
                         "x11vnc")
    # x11vnc opens /dev/stdin by name: a pipe this (unprivileged) process created can be
    # reopened that way, the one systemd or sshd handed over could not.
    reader, writer = os.pipe()
    os.write(writer, (password + "\n").encode())
    os.close(writer)
    os.dup2(reader, 0)
    os.close(reader)
    os.execv(X11VNC, x11vnc_argv(display, interactive=interactive))  # noqa: S606 - an argv

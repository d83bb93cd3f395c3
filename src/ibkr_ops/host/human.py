"""The words of an alert that needs a person at the Gateway's screen.

Some logins stop at a window only a person can answer: a passkey ceremony, the choice
between two second-factor devices, a dialog IBC does not know. The login watch's alert for
a second-factor prompt or a stalled login then says what is on the display (the window
titles, from `screen.windows`) and the exact command that shows it on the operator's
computer.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

from ibkr_ops.errors import OpsError
from ibkr_ops.host import screen
from ibkr_ops.host.config import HostConfig

# (display, its unit) -> the windows on it
Lister = Callable[[str, str], Sequence[screen.Window]]


def target(config: HostConfig, host: str = "HOST") -> str:
    """The options of an operator's task that name this Gateway: its host, and its instance
    on a host of several (``--host HOST --instance paper``)."""
    return f"--host {host}" + (f" --instance {config.instance}" if config.instance else "")


def vnc_command(config: HostConfig) -> str:
    """The command to run on the operator's computer, naming this host."""
    return f"invoke vnc {target(config, config.hostname or socket.gethostname())} --interactive"


def on_screen(config: HostConfig, lister: Lister = screen.windows) -> str:
    """The titles of the windows on the Gateway's display, for a person reading an alert."""
    try:
        shown = lister(config.display, config.display_unit)
    except OpsError as exc:
        return f"the display could not be read ({exc})"
    if not shown:
        return "no window on the display"
    return ", ".join(w.describe() for w in shown)


def screen_hint(config: HostConfig, lister: Lister = screen.windows) -> str:
    """The lines added to a prompt's alert: what is on screen, and how to answer it there
    (IBC logs a passkey, a device list and an IB Key push alike)."""
    return (f"On screen: {on_screen(config, lister)}.\nIf it asks for a passkey or a device, "
            f"answer it from your computer: `{vnc_command(config)}`")

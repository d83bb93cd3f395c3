"""The words of an alert that needs a person at the Gateway's screen.

Some logins stop at a window only a person can answer: a passkey ceremony, the choice
between two second-factor devices, a dialog IBC does not know, or IBKR refusing a Gateway
too old for the account's passkey. The alert then says what is on the display (the window
titles, from `screen.windows`) and the exact command that shows it on the operator's
computer. The login watch calls `alert` with the kind of prompt it recognised in IBC's log.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

from ibkr_ops.errors import OpsError
from ibkr_ops.host import screen
from ibkr_ops.host.config import HostConfig

PASSKEY, DEVICE_CHOICE, UNKNOWN_DIALOG, PASSKEY_UNSUPPORTED = (
    "passkey", "device-choice", "unknown-dialog", "passkey-unsupported")

_WHAT = {
    PASSKEY: "A Gateway login waits for a passkey: complete it in the Gateway's window",
    DEVICE_CHOICE: ("A Gateway login asks which second-factor device to use: choose it in the "
                    "Gateway's window (set IBKR_TWOFA_DEVICE to have IBC choose it next time)"),
    UNKNOWN_DIALOG: "The Gateway shows a window IBC does not know and waits: answer it",
    PASSKEY_UNSUPPORTED: ("IBKR refuses this Gateway version for the account's passkey "
                          "(\"Required PassKey is not supported, please upgrade\"): install a "
                          "newer Gateway with `invoke install --gateway-installer`"),
}
Lister = Callable[[str], Sequence[screen.Window]]


def vnc_command(config: HostConfig) -> str:
    """The command to run on the operator's computer, naming this host."""
    return f"invoke vnc --host {config.hostname or socket.gethostname()} --interactive"


def on_screen(config: HostConfig, lister: Lister = screen.windows) -> str:
    """The titles of the windows on the Gateway's display, for a person reading an alert."""
    try:
        shown = lister(config.display)
    except OpsError as exc:
        return f"the display could not be read ({exc})"
    if not shown:
        return "no window on the display"
    return ", ".join(w.describe() for w in shown)


def alert(kind: str, config: HostConfig, detail: str = "",
          lister: Lister = screen.windows) -> tuple[str, str]:
    """(level, text) of the notification for a prompt of `kind` (IBC's words in `detail`)."""
    text = _WHAT[kind] + (f" (IBC: {detail})" if detail else "") + "."
    text += f"\nOn screen: {on_screen(config, lister)}."
    if kind != PASSKEY_UNSUPPORTED:
        text += f"\nFrom your computer: `{vnc_command(config)}`"
    return ("error" if kind == PASSKEY_UNSUPPORTED else "warning"), text

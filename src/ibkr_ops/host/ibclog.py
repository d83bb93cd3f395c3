"""IBC's log lines as login events, and the Gateway's journal as their source.

IBC writes its progress to stdout (the unit sends it to the journal), in fixed wording taken
from IBC 3.24's own messages. Only a few lines matter to an unattended host: a login that
starts, completes, is rejected, waits for a second factor or gives up on it, and another
session taking the account. IBC itself answers a rejected login with a cold restart and a
new attempt, which repeated quickly can get the account locked: hence the watch on them.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from ibkr_ops.errors import OpsError
from ibkr_ops.host import gatewayversion

STARTED, COMPLETED, REJECTED = "login-started", "login-completed", "login-rejected"
TWOFA_WAIT, TWOFA_TIMEOUT, EXISTING_SESSION = "twofa-wait", "twofa-timeout", "existing-session"
# Approved, but the login did not complete within SecondFactorAuthenticationExitInterval:
# IBC exits 1111 (87), which ibcstart.sh relaunches when relogin is permitted.
TWOFA_HUNG = "twofa-hung"
# IBKR's own version notices, in its wording wherever it reaches the journal: IBC 3.24 logs
# the label texts of any dialog whose title contains "Gateway" (GatewayDialogHandler), so a
# notice drawn in labels arrives as "IBC: <its text>". VERSION_NOTICE names a coming cutoff
# and the login goes on; DESUPPORTED ("is no longer supported") is a build IBKR refuses.
VERSION_NOTICE, DESUPPORTED = "version-notice", "gateway-desupported"

# (event, substrings of IBC's message); the first match wins, so specific wording goes first.
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (TWOFA_HUNG, ("IBC closing because login has not completed after Second Factor "
                  "Authentication",)),
    (TWOFA_TIMEOUT, ("Re-login after second factor authentication timeout not required",
                     "Re-login after second factor authentication timeout in",
                     "Second factor authentication dialog has timed out")),
    (TWOFA_WAIT, ("Second Factor Authentication initiated",)),
    (REJECTED, ("Login failed", "Login Failed dialog", "Login error message:",
                "Login Error dialog", "Too many failed login attempts")),
    (EXISTING_SESSION, ("Existing session detected",)),
    (COMPLETED, ("Login has completed",)),
    (STARTED, ("Starting session", "Re-starting session")),
)


@dataclass(frozen=True)
class Event:
    """One login event: what happened, IBC's own words, and when (epoch seconds)."""

    kind: str
    line: str
    at: float


_WINDOW = re.compile(r"detected (?:dialog|frame) entitled: (.*); event=Opened$")


def window_opened(line: str) -> str | None:
    """The title of the window IBC reports opening (`detected dialog entitled: T;
    event=Opened`, logged for every window, known to IBC or not), or None."""
    match = _WINDOW.search(line.rstrip()) if "IBC:" in line else None
    return match.group(1) if match else None


def classify(line: str) -> str | None:
    """The login event an IBC log line reports, or None for every other line."""
    notice = gatewayversion.read_notice(line)
    if notice is not None:
        # IBC prints a dialog's labels one per line, only the first with its prefix: IBKR's
        # wording is specific enough to be taken from any line of the Gateway's unit.
        return DESUPPORTED if notice.final else VERSION_NOTICE
    if "IBC:" not in line and "IBC " not in line:
        return None
    # IBC's window events name dialogs ("detected dialog entitled: Login failed; …"); its own
    # verdict follows on a line of its own. Only the session dialog has no such line.
    window = " entitled: " in line
    for kind, needles in _RULES:
        if window and kind != EXISTING_SESSION:
            continue
        if any(needle in line for needle in needles):
            return kind
    return None


def message_of(line: str) -> str:
    """IBC's message without its time stamp (`2026-12-01 16:30:00:123 IBC: Login failed`)."""
    _, sep, rest = line.partition("IBC: ")
    return rest.strip() if sep else line.strip()


def _journalctl(unit: str, *args: str) -> list[str]:
    return ["journalctl", "--no-pager", "--quiet", "-o", "json",
            f"_SYSTEMD_UNIT={unit}", *args]


def parse_entry(raw: str) -> tuple[str, float, str] | None:
    """(message, epoch seconds, cursor) of one `journalctl -o json` line."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # bytes that are not UTF-8 come as a list of numbers
        message = bytes(b for b in message if isinstance(b, int)).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    stamp = entry.get("__REALTIME_TIMESTAMP", "0")
    at = int(stamp) / 1e6 if str(stamp).isdigit() else 0.0
    return message, at, str(entry.get("__CURSOR", ""))


def follow(unit: str, cursor: str | None) -> Iterator[tuple[str, float, str]]:
    """New journal entries of `unit` as they come, after `cursor` (or from now on)."""
    start = [f"--after-cursor={cursor}"] if cursor else ["--lines=0"]
    try:
        proc = subprocess.Popen(_journalctl(unit, "--follow", *start), stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
    except OSError as exc:
        raise OpsError(f"cannot read the journal: {exc}") from None
    if proc.stdout is None:
        raise OpsError("cannot read the journal: no output pipe")
    try:
        for raw in proc.stdout:
            parsed = parse_entry(raw)
            if parsed is not None:
                yield parsed
    finally:
        proc.kill()
        proc.wait()
    raise OpsError(f"journalctl stopped following {unit} (exit {proc.returncode})")


def recent(unit: str, since: float | None = None, lines: int = 12,
           timeout: float = 10.0) -> list[str]:
    """The unit's last log lines (since an epoch time if given): the words that explain a
    failure, for the notification that reports it."""
    # With --since, journalctl's --lines counts from the start of the range (systemd 252), not
    # back from its end: take the range and keep its last lines here.
    args = [f"--since=@{int(since)}"] if since is not None else [f"--lines={lines}"]
    try:
        out = subprocess.run(_journalctl(unit, *args), capture_output=True, text=True,
                             errors="replace", timeout=timeout, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    parsed = (parse_entry(raw) for raw in out.splitlines())
    return [p[0] for p in parsed if p is not None][-lines:]

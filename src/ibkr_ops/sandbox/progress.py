"""Progress for long waits: what is awaited and for how long, plain when not a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

from ibkr_ops.errors import OpsError

T = TypeVar("T")

#: Without a terminal, one line per this many seconds keeps CI logs short but alive.
PLAIN_EVERY = 15.0


def say(message: str) -> None:
    """One line of progress for the operator, flushed at once (logs may be piped)."""
    print(message, flush=True)


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    poll: float = 0.5,
    failure: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns something other than None, showing the elapsed time.

    On timeout, raise OpsError naming what was awaited, followed by `failure()`'s hint.
    """
    tty = sys.stdout.isatty()
    start = time.monotonic()
    shown = start
    while True:
        result = probe()
        elapsed = time.monotonic() - start
        if result is not None:
            if tty:
                sys.stdout.write("\r\033[K")
            if elapsed >= PLAIN_EVERY or tty:
                say(f"{what}: done after {elapsed:.0f} s")
            return result
        if elapsed > timeout:
            if tty:
                sys.stdout.write("\n")
            hint = f"; {failure()}" if failure else ""
            raise OpsError(f"timed out after {elapsed:.0f} s waiting for {what}{hint}")
        now = time.monotonic()
        if tty:
            sys.stdout.write(f"\r\033[K{what}: {elapsed:.0f} s")
            sys.stdout.flush()
        elif now - shown >= PLAIN_EVERY:
            say(f"{what}: still waiting, {elapsed:.0f} s")
            shown = now
        time.sleep(poll)

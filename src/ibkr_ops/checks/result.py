"""What a go-live check returns, and how a check's body says pass, fail or "not configured".

A check body returns `Passed` or raises `Failed` / `NotConfigured` / `Skipped` (or an
`OpsError` from a command it needed); the `check` decorator turns that into one `Result`,
so callers (go-live, migrate, the testinfra suite) never see an exception for a check that
merely found something wrong.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from ibkr_ops.checks.runner import Unreachable
from ibkr_ops.errors import OpsError

P = ParamSpec("P")
T = TypeVar("T")
Figure = float | int | str
Say = Callable[[str], None]

# The go-live checklist, by item number (0 only with an operator's credentials file).
TITLES = {
    0: "Installed settings match the operator's file",
    1: "Gateway starts",
    2: "API port responds on the configured address only",
    3: "Health check passes (all layers)",
    4: "Services enabled for boot",
    5: "Restart timer scheduled correctly",
    6: "Manual restart works",
    7: "Notifications received",
    8: "Reboot survival",
    9: "Crash recovery",
    10: "A trading bot connects",
    11: "Security: modes, owners, no password leaks",
}


class Status(enum.StrEnum):
    """ok and not configured let a switch go ahead; fail stops it; skipped was not run."""

    OK = "ok"
    FAIL = "fail"
    NOT_CONFIGURED = "not configured"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    """One check's verdict: its checklist item, a one-line detail and measured figures."""

    item: int
    name: str
    status: Status
    detail: str
    figures: tuple[tuple[str, Figure], ...] = ()

    @property
    def title(self) -> str:
        return TITLES[self.item]

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


@dataclass(frozen=True)
class Passed:
    """A check body's success: what was seen, and figures (seconds in names ending `_s`)."""

    detail: str
    figures: tuple[tuple[str, Figure], ...] = ()

    @classmethod
    def of(cls, detail: str, **figures: Figure) -> Passed:
        return cls(detail, tuple(figures.items()))


class Failed(Exception):
    """The host is not as it must be; the message says how, in one line."""


class NotConfigured(Exception):
    """The deployment does not use what the check covers (no webhook): not a failure."""


class Skipped(Exception):
    """Nothing to check in this run (no operator file to compare with)."""


def check(item: int) -> Callable[[Callable[P, Passed]], Callable[P, Result]]:
    """Make a check body into a function returning its `Result` for checklist `item`."""

    def wrap(body: Callable[P, Passed]) -> Callable[P, Result]:
        @functools.wraps(body)
        def run(*args: P.args, **kwargs: P.kwargs) -> Result:
            try:
                passed = body(*args, **kwargs)
            except Failed as exc:
                return Result(item, body.__name__, Status.FAIL, str(exc))
            except NotConfigured as exc:
                return Result(item, body.__name__, Status.NOT_CONFIGURED, str(exc))
            except Skipped as exc:
                return Result(item, body.__name__, Status.SKIPPED, str(exc))
            except Unreachable as exc:
                return Result(item, body.__name__, Status.FAIL, f"the host did not answer: {exc}")
            except OpsError as exc:  # a command the check needs failed: that is its finding
                return Result(item, body.__name__, Status.FAIL, str(exc))
            return Result(item, body.__name__, Status.OK, passed.detail, passed.figures)

        return run

    return wrap


def require(condition: object, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Failed(message)


def poll(what: str, probe: Callable[[], T | None], timeout: float, say: Say,
         interval: float = 1.0) -> tuple[T, float]:
    """Call `probe` until it returns a value; (value, seconds waited). Fails after `timeout`,
    saying every 10 s what it waits for."""
    started = time.monotonic()
    next_note = started + 10
    while True:
        value = probe()
        elapsed = time.monotonic() - started
        if value is not None:
            return value, elapsed
        if elapsed > timeout:
            raise Failed(f"{what}: not within {timeout:g} s")
        if time.monotonic() >= next_note:
            say(f"waiting for {what}: {elapsed:.0f} s of at most {timeout:g} s")
            next_note += 10
        time.sleep(interval)

"""The faults switched on in a simulated Gateway, and what switching one on or off does.

One implementation for both paths: the Python-only simulator, and the stand-in's API child,
to which the JVM passes the API's faults (``hang``, ``slow-handshake``, the upstream ones).
Which faults exist and how a spec is read is ``config.parse_fault``'s job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import upstream
from .config import parse_fault

if TYPE_CHECKING:
    from .gateway import Gateway


class Faults:
    """The active faults (name to value) of one Gateway, read with ``in`` and ``get``."""

    def __init__(self, gateway: Gateway, initial: Mapping[str, float | None]) -> None:
        self._gw = gateway
        self.active: dict[str, float | None] = dict(initial)
        self._leak: list[bytearray] = []
        self._leak_task: asyncio.Task[None] | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.active

    def get(self, name: str) -> float | None:
        return self.active.get(name)

    @property
    def leaked_mb(self) -> float:
        return round(sum(len(b) for b in self._leak) / 1048576, 1)

    def switch_on(self, spec: str) -> str:
        """Switch on ``NAME[=VALUE]`` (ConfigError when it is not a fault); its name."""
        name, value = parse_fault(spec)
        self.active[name] = value
        self._arm(name, value)
        self._gw.sim(f"fault on: {spec}")
        return name

    def clear(self, name: str | None) -> None:
        """Switch one fault off, or all of them; what they broke comes back."""
        names = list(self.active) if not name else [name]
        for item in names:
            self.active.pop(item, None)
            if item == "leak" and self._leak_task is not None:
                self._leak_task.cancel()
                self._leak_task = None
                self._leak.clear()
            elif item in upstream.FAULTS:
                upstream.switch(self._gw, item, on=False)
        self._gw.sim(f"faults cleared: {', '.join(names) or 'none'}")

    def arm_all(self) -> None:
        """Start what the faults given at start do (their timers, their leak)."""
        for name, value in list(self.active.items()):
            self._arm(name, value)

    def _arm(self, name: str, value: float | None) -> None:
        # twofa-timeout needs nothing here: a pending automatic approval checks for it.
        if name == "crash-after":
            self._gw.spawn(self._crash(value or 0.0))
        elif name == "leak":
            if self._leak_task is not None:
                self._leak_task.cancel()
            self._leak_task = self._gw.spawn(self._leak_memory(value or 0.0))
        elif name == "existing-session" and self._gw.logged_in:
            self._gw.spawn(self._gw.login.existing_session())
        elif name in upstream.FAULTS:
            upstream.switch(self._gw, name, on=True)

    async def _crash(self, after: float) -> None:
        await asyncio.sleep(after)
        self._gw.sim(f"crash-after={after:g}: killing the process (SIGKILL)")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    async def _leak_memory(self, mb_per_minute: float) -> None:
        """Grow the resident set by touching fresh pages, like the Gateway's slow leak."""
        step = 0.25
        chunk = int(mb_per_minute * 1024 * 1024 / 60 * step)
        while chunk > 0:
            self._leak.append(bytearray(b"\x01") * chunk)
            await asyncio.sleep(step)

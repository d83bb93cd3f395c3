"""One cold login at a time on a host: a bounded wait on a lock its Gateways share.

Two Gateways of one host logging in at once means two second-factor prompts on the phone at
the same moment (which one is being approved?) and two JVMs starting on the same CPUs. The
daily restarts are staggered so that they never meet; the lock covers what a schedule cannot:
a cold fallback that runs long, a cold restart by the watchdog or by hand. The restart
runner takes it around a cold restart and its wait for the login (``restart._cold``), which
is the path every cold restart of the host tools takes.

It is flock(2) on a directory every layout has (``Layout.login_lock``), opened read-only, so
a unit that may not write there (ProtectSystem=strict) still takes it; the kernel drops it
when its holder exits, so a runner killed mid-way never leaves it held. The wait is bounded
and says what it waits for; past the bound the login goes ahead anyway and says so, since a
Gateway kept down for the sake of another's login is worse than two prompts at once.
systemd's own restart after a crash does not take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from ibkr_ops.host.config import HostConfig

# A second factor's 180 s (IBC's SecondFactorAuthenticationTimeout) and the login after it.
WAIT_S = 240.0
POLL_S = 1.0


@contextlib.contextmanager
def held(config: HostConfig, steps: list[str], progress: Callable[[str], None],
         wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the host's login lock for the block, after waiting at most ``wait_s`` for it;
    ``steps`` gets a line when the wait was noticeable, ended at the bound, or the lock could
    not be opened (the login goes ahead in every case)."""
    try:
        fd = os.open(config.login_lock, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        steps.append(f"login lock {config.login_lock} not taken ({exc.strerror or exc}); "
                     "logging in without it")
        yield
        return
    try:
        waited = _acquire(fd, wait_s, progress)
        if waited is None:
            steps.append(f"another Gateway of this host was still logging in after {wait_s:.0f} "
                         "s; logging in anyway")
        elif waited >= POLL_S:
            steps.append(f"waited {waited:.0f} s for another Gateway of this host to finish "
                         "its login")
        yield
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, wait_s: float, progress: Callable[[str], None]) -> float | None:
    """Seconds waited for the lock, or None when ``wait_s`` passed without it."""
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = time.monotonic() - start
            if waited >= wait_s:
                return None
            progress(f"waiting for another Gateway of this host to finish its login: "
                     f"{waited:.0f} s of {wait_s:.0f} s")
            time.sleep(min(POLL_S, wait_s - waited))
            continue
        return time.monotonic() - start

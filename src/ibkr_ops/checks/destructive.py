"""Checklist items 6, 8 and 9: restart, reboot and crash the Gateway, and watch it come back.

They change the host's state (the Gateway is down for a while; a cold restart of a real
account asks for the second factor), so they run only when asked, after the rest.
"""

from __future__ import annotations

import time

from ibkr_ops.checks.expect import Expect
from ibkr_ops.checks.gateway import AFTER_REBOOT, gateway_jvms, healthy
from ibkr_ops.checks.result import Passed, Say, check, poll, require
from ibkr_ops.checks.runner import Runner, output, quietly

# The checklist's own bound for coming back from a kill -9.
CRASH_RECOVERY_S = 60.0
BOOT_ID = "/proc/sys/kernel/random/boot_id"


@check(6)
def manual_restart(runner: Runner, expect: Expect, say: Say) -> Passed:
    """`systemctl restart` of the Gateway's unit brings it back healthy; the time it took."""
    layout = expect.layout
    before = set(gateway_jvms(runner, layout))
    started = time.monotonic()
    output(runner, f"systemctl restart {expect.layout.gateway_unit}",
           timeout=expect.cold_restart_timeout_s)
    poll("a new Gateway JVM", lambda: (set(gateway_jvms(runner, layout)) - before) or None,
         expect.cold_restart_timeout_s, say)
    poll("the health check to pass after the restart", lambda: healthy(runner, layout),
         expect.cold_restart_timeout_s, say)
    seconds = time.monotonic() - started
    return Passed.of(f"healthy again {seconds:.1f} s after systemctl restart", restart_s=seconds)


@check(9)
def crash_recovery(runner: Runner, expect: Expect, say: Say) -> Passed:
    """After kill -9 of the Gateway's JVM, the API is healthy again within 60 s."""
    layout = expect.layout
    poll("a healthy Gateway before the kill", lambda: healthy(runner, layout),
         expect.cold_restart_timeout_s, say)
    victims = gateway_jvms(runner, layout)
    require(victims, "no Gateway JVM to kill")
    started = time.monotonic()
    output(runner, f"kill -9 {' '.join(map(str, victims))}")
    poll("the killed JVM to be replaced",
         lambda: (set(gateway_jvms(runner, layout)) - set(victims)) or None, CRASH_RECOVERY_S,
         say, interval=0.5)
    poll("the health check to pass after kill -9", lambda: healthy(runner, layout),
         CRASH_RECOVERY_S - (time.monotonic() - started), say, interval=0.5)
    seconds = time.monotonic() - started
    return Passed.of(f"healthy again {seconds:.1f} s after kill -9", recovery_s=seconds)


@check(8)
def reboot_survival(runner: Runner, expect: Expect, say: Say, timeout: float = 300.0) -> Passed:
    """After `systemctl reboot` the host comes back and items 1-5 hold again."""
    boot_id = output(runner, f"cat {BOOT_ID}").strip()
    started = time.monotonic()
    # Detached, so the SSH session ends cleanly before the host goes down.
    output(runner, "systemd-run --no-block --on-active=1 --unit=ibkr-verify-reboot "
                   "systemctl reboot")

    def new_boot() -> str | None:
        ran = quietly(runner, f"cat {BOOT_ID}")
        value = ran.stdout.strip() if ran is not None and ran.ok else ""
        return value if value and value != boot_id else None

    poll("the host to come back from the reboot", new_boot, timeout, say, interval=2)
    back = time.monotonic() - started
    poll("the health check to pass after the reboot", lambda: healthy(runner, expect.layout),
         timeout - back, say, interval=2)
    seconds = time.monotonic() - started
    failed = [r for r in (c(runner, expect) for c in AFTER_REBOOT) if r.failed]
    require(not failed, "after the reboot: " + "; ".join(f"{r.item} {r.detail}" for r in failed))
    return Passed.of(f"SSH back after {back:.1f} s, healthy after {seconds:.1f} s, items 1-5 hold",
                     ssh_back_s=back, healthy_s=seconds)

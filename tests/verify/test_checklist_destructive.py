"""Checklist items 6, 8 and 9: restart, reboot and crash the Gateway, and watch it come back.

They change the host's state (the Gateway is down for a while; a cold restart of a real
account asks for the second factor), so they run only with --destructive, after the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import checklist
import pytest
from checklist import GATEWAY, Expect, gateway_java_pids, healthy, poll, quietly
from testinfra.host import Host

Say = Callable[[str], None]
Record = Callable[[str, object], None]
# The checklist's own bound for coming back from a kill -9.
CRASH_RECOVERY_S = 60.0


@pytest.mark.destructive
@pytest.mark.checklist(6)
def test_manual_restart(host: Host, expect: Expect, say: Say, record: Record) -> None:
    """`systemctl restart ibkr-gateway` brings the Gateway back healthy; the time is reported."""
    before = set(gateway_java_pids(host))
    started = time.monotonic()
    host.check_output("systemctl restart %s", GATEWAY)
    poll("a new Gateway JVM", lambda: (set(gateway_java_pids(host)) - before) or None,
         expect.cold_restart_timeout_s, say)
    poll("the health check to pass after the restart", lambda: healthy(host),
         expect.cold_restart_timeout_s, say)
    record("restart_s", time.monotonic() - started)


@pytest.mark.destructive
@pytest.mark.checklist(9)
def test_crash_recovery(host: Host, expect: Expect, say: Say, record: Record) -> None:
    """After kill -9 of the Gateway's JVM, the API is healthy again within 60 s."""
    poll("a healthy Gateway before the kill", lambda: healthy(host),
         expect.cold_restart_timeout_s, say)
    victims = gateway_java_pids(host)
    assert victims, "no Gateway JVM to kill"
    started = time.monotonic()
    host.check_output("kill -9 %s", " ".join(map(str, victims)))
    poll("the killed JVM to be replaced", lambda: (set(gateway_java_pids(host)) - set(victims))
         or None, CRASH_RECOVERY_S, say, interval=0.5)
    poll("the health check to pass after kill -9",
         lambda: healthy(host), CRASH_RECOVERY_S - (time.monotonic() - started), say, interval=0.5)
    record("recovery_s", time.monotonic() - started)


@pytest.mark.destructive
@pytest.mark.checklist(8)
def test_reboot_survival(host: Host, expect: Expect, say: Say, record: Record,
                         request: pytest.FixtureRequest) -> None:
    """After `systemctl reboot` the host comes back and items 1-5 hold again."""
    timeout = float(request.config.getoption("reboot_timeout"))
    boot_id = host.file("/proc/sys/kernel/random/boot_id").content_string.strip()
    started = time.monotonic()
    # Detached, so the SSH session ends cleanly before the host goes down.
    host.check_output("systemd-run --no-block --on-active=1 --unit=ibkr-verify-reboot "
                      "systemctl reboot")

    def new_boot() -> str | None:
        result = quietly(host, "cat /proc/sys/kernel/random/boot_id")
        value = result.stdout.strip() if result is not None and result.rc == 0 else ""
        return value if value and value != boot_id else None

    poll("the host to come back from the reboot", new_boot, timeout, say, interval=2)
    back = time.monotonic() - started
    poll("the health check to pass after the reboot", lambda: healthy(host),
         timeout - back, say, interval=2)
    record("ssh_back_s", back)
    record("healthy_s", time.monotonic() - started)
    for check in checklist.AFTER_REBOOT:
        check(host, expect)

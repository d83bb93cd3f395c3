"""Checklist items 1-5: the Gateway runs, listens where configured, is healthy, survives a
boot and restarts on schedule. Read-only: safe on a production host at any time."""

from __future__ import annotations

from collections.abc import Callable

import checklist
import pytest
from checklist import Expect
from testinfra.host import Host


@pytest.mark.checklist(1)
def test_gateway_starts(host: Host, expect: Expect) -> None:
    """xvfb.service and ibkr-gateway.service are active and run as the service user."""
    checklist.gateway_starts(host, expect)


@pytest.mark.checklist(2)
def test_api_port_on_configured_address_only(host: Host, expect: Expect) -> None:
    """The API port listens on the configured address and on no other."""
    checklist.api_port_listens(host, expect)


@pytest.mark.checklist(3)
def test_health_check_passes(host: Host, expect: Expect) -> None:
    """ibkr-health-check on the host: healthy, every layer ok, accounts of the right mode."""
    checklist.health_passes(host, expect)


@pytest.mark.checklist(4)
def test_enabled_for_boot(host: Host, expect: Expect) -> None:
    """Both services and the restart and health-check timers are enabled (timers active)."""
    checklist.enabled_for_boot(host, expect)


@pytest.mark.checklist(5)
def test_restart_timer_next_elapse(host: Host, expect: Expect,
                                   record: Callable[[str, object], None]) -> None:
    """systemd's next elapse of the restart timer is a weekday at the configured time and zone."""
    when = checklist.timer_scheduled(host, expect)
    record("next_restart", f"{when:%a %Y-%m-%d %H:%M %Z}")

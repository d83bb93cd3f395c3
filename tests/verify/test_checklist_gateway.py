"""Checklist items 1-5: the Gateway runs, listens where configured, is healthy, survives a
boot and restarts on schedule. Read-only: safe on a production host at any time."""

from __future__ import annotations

import pytest
from testinfra_runner import Judge, TestinfraRunner

from ibkr_ops.checks import Expect, gateway


@pytest.mark.checklist(1)
def test_gateway_starts(runner: TestinfraRunner, expect: Expect, judge: Judge) -> None:
    """xvfb.service and ibkr-gateway.service are active and run as the service user."""
    judge(gateway.gateway_starts(runner, expect))


@pytest.mark.checklist(2)
def test_api_port_on_configured_address_only(runner: TestinfraRunner, expect: Expect,
                                             judge: Judge) -> None:
    """The API port listens on the configured address and on no other."""
    judge(gateway.api_port_listens(runner, expect))


@pytest.mark.checklist(3)
def test_health_check_passes(runner: TestinfraRunner, expect: Expect, judge: Judge) -> None:
    """ibkr-health-check on the host: healthy, every layer ok, accounts of the right mode."""
    judge(gateway.health_passes(runner, expect))


@pytest.mark.checklist(4)
def test_enabled_for_boot(runner: TestinfraRunner, expect: Expect, judge: Judge) -> None:
    """Both services and the restart and health-check timers are enabled (timers active)."""
    judge(gateway.enabled_for_boot(runner, expect))


@pytest.mark.checklist(5)
def test_restart_timer_next_elapse(runner: TestinfraRunner, expect: Expect, judge: Judge) -> None:
    """systemd's next elapse of the restart timer is a weekday at the configured time and zone."""
    judge(gateway.timer_scheduled(runner, expect))

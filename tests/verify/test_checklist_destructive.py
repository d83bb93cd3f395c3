"""Checklist items 6, 8 and 9: restart, reboot and crash the Gateway, and watch it come back.

They change the host's state (the Gateway is down for a while; a cold restart of a real
account asks for the second factor), so they run only with --destructive, after the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from testinfra_runner import Judge, TestinfraRunner

from ibkr_ops.checks import Expect, destructive

Say = Callable[[str], None]


@pytest.mark.destructive
@pytest.mark.checklist(6)
def test_manual_restart(runner: TestinfraRunner, expect: Expect, say: Say, judge: Judge) -> None:
    """`systemctl restart ibkr-gateway` brings the Gateway back healthy; the time is reported."""
    judge(destructive.manual_restart(runner, expect, say))


@pytest.mark.destructive
@pytest.mark.checklist(9)
def test_crash_recovery(runner: TestinfraRunner, expect: Expect, say: Say, judge: Judge) -> None:
    """After kill -9 of the Gateway's JVM, the API is healthy again within 60 s."""
    judge(destructive.crash_recovery(runner, expect, say))


@pytest.mark.destructive
@pytest.mark.checklist(8)
def test_reboot_survival(runner: TestinfraRunner, expect: Expect, say: Say, judge: Judge,
                         request: pytest.FixtureRequest) -> None:
    """After `systemctl reboot` the host comes back and items 1-5 hold again."""
    judge(destructive.reboot_survival(runner, expect, say,
                                      float(request.config.getoption("reboot_timeout"))))

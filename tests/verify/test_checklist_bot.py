"""Checklist item 10: a trading bot (ib_async) connects through an SSH tunnel to the API."""

from __future__ import annotations

import pytest
from testinfra_runner import Judge, TestinfraRunner

from ibkr_ops.checks import Expect, bot


@pytest.mark.checklist(10)
def test_bot_connects_through_ssh_tunnel(runner: TestinfraRunner, expect: Expect,
                                         judge: Judge) -> None:
    """ib_async with a fresh clientId reads the managed accounts and the server time."""
    judge(bot.bot_connects(runner, expect))

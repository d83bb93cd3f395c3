"""Checklist item 7: a notification sent from the host reaches the webhook.

`ibkr-notify` posts with `?wait=true`, so Discord answers with the message object and the
tool prints its id: Discord's own answer is the proof. A deployment without a webhook is
"not configured", not a failure: nothing is sent and nothing is wrong.
"""

from __future__ import annotations

import re
import uuid

from ibkr_ops.checks.expect import Expect
from ibkr_ops.checks.result import NotConfigured, Passed, check, require
from ibkr_ops.checks.runner import Runner
from ibkr_ops.remote import gateways


def test_message() -> str:
    """A message no earlier run sent, so a receiver can be searched for it."""
    return f"ibkr-ops verify: test notification {uuid.uuid4()}"


@check(7)
def notification_accepted(runner: Runner, expect: Expect, text: str | None = None) -> Passed:
    """ibkr-notify on the host delivers a test message and Discord answers with its id."""
    if not expect.webhook:
        raise NotConfigured("DISCORD_WEBHOOK_URL is not set in the host's credentials.env: "
                            "the host sends no alerts")
    layout = expect.layout
    sent = runner.run(gateways.tool_command(layout.notify_tool, layout, "--level", "info",
                                            text or test_message()), timeout=90)
    require(sent.ok, f"ibkr-notify exit {sent.rc}: {sent.last_error()}")
    ids = re.findall(r"\d{6,}", sent.stdout.partition("id")[2])
    require(ids, f"no message id in ibkr-notify's answer: {sent.stdout.strip()!r}")
    return Passed.of(f"Discord accepted message {ids[0]}", message_id=ids[0])

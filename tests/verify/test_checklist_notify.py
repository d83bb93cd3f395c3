"""Checklist item 7: a notification sent from the host reaches the webhook (or the host has
none: "not configured"). Where the host runs the Discord-compatible receiver shipped with the
simulator (sandbox guests, the demo), the message is also read back from it by its id.
"""

from __future__ import annotations

import json
import shlex

import pytest
from testinfra_runner import Judge, TestinfraRunner

from ibkr_ops.checks import Expect, notification
from ibkr_ops.demo import DISCORD_PORT, DISCORD_UNIT

READ_BACK = f"""
import json, urllib.request
with urllib.request.urlopen("http://127.0.0.1:{DISCORD_PORT}/_sim/messages", timeout=10) as r:
    print(json.dumps(json.load(r)))
"""


@pytest.mark.checklist(7)
def test_notification_accepted_by_webhook(runner: TestinfraRunner, expect: Expect,
                                          judge: Judge) -> None:
    """ibkr-notify on the host delivers a test message and Discord answers with its id."""
    text = notification.test_message()
    message_id = dict(judge(notification.notification_accepted(runner, expect, text)).figures)
    if not runner.run(f"systemctl is-active --quiet {DISCORD_UNIT}").ok:
        return  # a real webhook: Discord's own answer (the id) is the proof
    messages = json.loads(runner.run(f"python3 -c {shlex.quote(READ_BACK)}").stdout)
    by_id = {m["id"]: m for m in messages}
    found = str(message_id["message_id"])
    assert found in by_id, f"the receiver on the host has no message {found}"
    texts = [e.get("description", "") for e in by_id[found].get("embeds", [])]
    assert any(text in t for t in texts), f"message {found} does not carry the test text"

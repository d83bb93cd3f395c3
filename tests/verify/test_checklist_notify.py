"""Checklist item 7: a notification sent from the host reaches the webhook.

`ibkr-notify` posts with `?wait=true`, so Discord answers with the message object and the
tool prints its id. Where the host runs the Discord-compatible receiver shipped with the
simulator (sandbox guests, the demo), the message is also read back from it by that id.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

import pytest
from checklist import NOTIFY, Expect
from testinfra.host import Host

from ibkr_ops.demo import DISCORD_PORT, DISCORD_UNIT

READ_BACK = f"""
import json, urllib.request
with urllib.request.urlopen("http://127.0.0.1:{DISCORD_PORT}/_sim/messages", timeout=10) as r:
    print(json.dumps(json.load(r)))
"""


@pytest.mark.checklist(7)
def test_notification_accepted_by_webhook(host: Host, expect: Expect,
                                          record: Callable[[str, object], None]) -> None:
    """ibkr-notify on the host delivers a test message and Discord answers with its id."""
    assert expect.webhook, "DISCORD_WEBHOOK_URL is not set in the host's credentials.env"
    nonce = f"ibkr-ops verify: test notification {uuid.uuid4()}"
    sent = host.run(f"{NOTIFY} --level info %s", nonce)
    assert sent.rc == 0, f"ibkr-notify exit {sent.rc}: {sent.stderr.strip()}"
    ids = re.findall(r"\d{6,}", sent.stdout.partition("id")[2])
    assert ids, f"no message id in ibkr-notify's answer: {sent.stdout.strip()!r}"
    record("message_id", ids[0])
    if not host.service(DISCORD_UNIT).is_running:
        return  # a real webhook: Discord's own answer (the id) is the proof
    messages = json.loads(host.check_output("python3 -c %s", READ_BACK))
    by_id = {m["id"]: m for m in messages}
    assert ids[0] in by_id, f"the receiver on the host has no message {ids[0]}"
    texts = [e.get("description", "") for e in by_id[ids[0]].get("embeds", [])]
    assert any(nonce in t for t in texts), f"message {ids[0]} does not carry the test text"

"""Start the Discord-compatible receiver as a real process and talk to its side doors."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEBHOOK_ID = "112233445566778899"
TOKEN = "sEcReT-t0ken_Abc123xyz"


@dataclass
class DiscordSim:
    base: str
    store: Path

    @property
    def url(self) -> str:
        return f"{self.base}/api/webhooks/{WEBHOOK_ID}/{TOKEN}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def messages(self) -> list[dict[str, Any]]:
        return list(self.get("/_sim/messages"))

    def statuses(self) -> list[int]:
        return [r["status"] for r in self.get("/_sim/requests")]

    def respond(self, *answers: dict[str, Any] | int) -> None:
        request = urllib.request.Request(  # noqa: S310 - the local receiver
            self.base + "/_sim/respond", method="POST", data=json.dumps(list(answers)).encode())
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310


@contextmanager
def discord_sim(tmp_path: Path, *args: str) -> Iterator[DiscordSim]:
    """`python -m ibkr_ops.sim.discord --port 0`, stopped at the end."""
    store = tmp_path / "discord.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "ibkr_ops.sim.discord", "--port", "0", "--store", str(store),
         "--webhook", f"{WEBHOOK_ID}/{TOKEN}", *args],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line
        yield DiscordSim(line.split()[-1], store)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()

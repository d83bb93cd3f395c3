"""The stand-in's API child, in-process: logged in from the start, it answers the JVM's
control lines with the simulator's own control answers and stops on EXIT."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sim_support import free_port

from ibkr_ops.sim import apichild, logins
from ibkr_ops.sim.gateway import Gateway


def test_the_child_serves_the_api_and_answers_the_jvm(tmp_path: Path) -> None:
    port = free_port()
    args = apichild.build_parser().parse_args(
        ["--port", str(port), "--trading-mode", "live", "--login-id", "jdoe",
         "--settings-dir", str(tmp_path), "--warm", "--fault", "slow-handshake=0.5"])
    cfg = apichild.config_from_args(args)
    gw = Gateway(cfg, out=lambda _line: None)
    replies: list[str] = []

    async def drive() -> tuple[int, bool]:
        commands = asyncio.StreamReader()
        serving = asyncio.ensure_future(apichild.serve(gw, commands, replies.append, args.warm))
        while not replies:
            await asyncio.sleep(0.02)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        commands.feed_data(b"PING\nSTATUS\nFAULT hang\nCLEAR slow-handshake\n")
        while len(replies) < 4:
            await asyncio.sleep(0.02)
        commands.feed_data(b"EXIT\n")
        code = await asyncio.wait_for(serving, 10)
        return code, gw.api_server.listening

    code, listening = asyncio.run(drive())
    assert (code, listening) == (0, False)
    assert replies[0] == "READY"
    state = json.loads(replies[1].removeprefix("OK "))
    assert (state["logged_in"], state["warm"], state["api_open"]) == (True, True, True)
    assert state["trading_mode"] == "live" and state["api_port"] == port
    assert state["faults"] == {"slow-handshake": 0.5}
    assert replies[2:] == ["OK fault hang on", "OK cleared"]
    events = [(e["event"], e.get("warm"), e.get("reason"))
              for e in logins.read([cfg.logins_path])]
    assert events == [("login", True, None), ("logout", None, "shutdown")]

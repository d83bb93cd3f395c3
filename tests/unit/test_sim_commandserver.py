"""The simulated IBC command server, in-process: IBC's INFO lines when they are not
suppressed, PAUSE's file, a second restart refused while one is pending, STOP's exit."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sim_support import free_port

from ibkr_ops.sim import logins
from ibkr_ops.sim.config import SimConfig
from ibkr_ops.sim.gateway import Gateway


async def conversation(port: int, command: bytes) -> list[str]:
    """Every line the server sends for one command, until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(command)
    lines = [line.decode() async for line in reader]
    writer.close()
    return lines


def test_pause_then_a_refused_restart_then_stop(tmp_path: Path) -> None:
    cfg = SimConfig(port=free_port(), command_server_port=free_port(), headless=True,
                    settings_dir=tmp_path, second_factor="off", suppress_info=False,
                    restart_delay=60.0)
    cfg.finish()
    gw = Gateway(cfg, out=lambda _line: None)

    async def drive() -> tuple[list[list[str]], int]:
        run = asyncio.ensure_future(gw.run())
        while not gw.api_server.listening:
            await asyncio.sleep(0.02)
        talks = [await conversation(cfg.command_server_port, line)
                 for line in (b"PAUSE\n", b"RESTART\n", b"STOP\n")]
        return talks, await asyncio.wait_for(run, 10)

    (pause, restart, stop), code = asyncio.run(drive())
    assert pause[:3] == ["INFO IBC Command Server\n", "INFO Pausing TWS\n",
                         "OK PAUSE in progress\n"]
    assert re.fullmatch(r"OK PAUSE at \d\d:\d\d [AP]M\n", pause[3]) and len(pause) == 4
    assert (tmp_path / "PAUSE").is_file()
    assert restart == ["INFO IBC Command Server\n", "ERROR RESTART already in progress\n"]
    assert stop == ["INFO IBC Command Server\n", "INFO Closing IBC\n",
                    "OK Shutting down: STOP command\n"]
    assert code == 0
    assert [(e["event"], e.get("reason")) for e in logins.read([cfg.logins_path])] == [
        ("login", None), ("logout", "shutdown")]

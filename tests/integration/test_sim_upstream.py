"""IBKR's side of the simulated Gateway: farm and link faults as a bot and the health probe see
them (status codes at connect and to connected clients, the time request while IBKR is gone)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from sim_support import BOT_CLIENT, Sim, run_client

from ibkr_ops.host import ibapi, upstream

FARMS_OK = {2104, 2106, 2158}


def hold_bot(python: str, sim: Sim, client_id: int, seconds: float) -> subprocess.Popen[str]:
    """A connected ib_async bot that stays connected for `seconds`, then reports its errors."""
    bot = subprocess.Popen([python, str(BOT_CLIENT), str(sim.port), str(client_id), "hold",
                            str(seconds)], stdout=subprocess.PIPE, text=True)
    assert bot.stdout is not None
    assert '"connected": true' in bot.stdout.readline()
    return bot


def codes(bot: subprocess.Popen[str]) -> list[int]:
    out, _ = bot.communicate(timeout=30)
    return list(json.loads(out.splitlines()[-1])["errors"])


def test_farm_broken_is_told_to_connected_and_new_clients(sim_factory: Callable[..., Sim],
                                                          async_python: str) -> None:
    sim = sim_factory()
    bot = hold_bot(async_python, sim, 4, 2)
    assert sim.ctl("FAULT farm-broken") == "OK fault farm-broken on"
    fresh = run_client(async_python, sim.port, 5, "connect")
    probe = ibapi.probe("127.0.0.1", sim.port, 999, 5)
    assert sim.ctl("CLEAR farm-broken") == "OK cleared"
    seen = codes(bot)
    # At connect all three OK, then market and historical data broken, then OK again.
    assert set(seen[:3]) == FARMS_OK
    assert seen[3:] == [2103, 2105, 2104, 2106]
    errors = fresh["errors"]
    assert fresh["ok"] is True and isinstance(errors, list) and {2103, 2105, 2158} <= set(errors)
    link = upstream.read(probe.status_messages)
    assert link.connected and [f.name for f in link.broken] == ["usfarm", "ushmds"]


def test_connectivity_lost_leaves_the_api_up_and_ibkr_out_of_reach(
        sim_factory: Callable[..., Sim], async_python: str) -> None:
    sim = sim_factory()
    bot = hold_bot(async_python, sim, 4, 2)
    assert sim.ctl("FAULT connectivity-lost") == "OK fault connectivity-lost on"
    probe = ibapi.probe("127.0.0.1", sim.port, 999, 10)
    assert sim.ctl("CLEAR connectivity-lost") == "OK cleared"
    seen = codes(bot)
    assert 1100 in seen and seen[seen.index(1100) + 1] == 1102
    assert probe.server_time is None
    assert not upstream.read(probe.status_messages).connected
    after = ibapi.probe("127.0.0.1", sim.port, 999, 5)
    assert after.server_time is not None
    assert upstream.read(after.status_messages).connected

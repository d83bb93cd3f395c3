"""Real bot libraries (ib_async 2.1.0, ib_insync 0.9.86, unmodified) against the simulator."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from sim_support import BOT_CLIENT, Sim, run_client


def test_connect_and_startup_data(sim_factory: Callable[..., Sim], client_python: str) -> None:
    """connect, accounts, current time, positions, open trades, account summary, disconnect."""
    sim = sim_factory("--trading-mode", "paper")
    result = run_client(client_python, sim.port, 1, "basic")
    # Gateway 10.30 speaks up to 187: each library gets its own maximum (ib_async 178, insync 176).
    assert result["server_version"] == (178 if result["library"] == "ib_async" else 176)
    accounts = result["accounts"]
    assert isinstance(accounts, list) and len(accounts) == 1
    assert str(accounts[0]).startswith("DU")
    assert abs(float(str(result["time"])) - time.time()) < 5
    assert ("AAPL" in {p[1] for p in result["positions"]})  # type: ignore[union-attr]
    assert result["open_trades"] == 0
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower"} <= set(result["summary_tags"])  # type: ignore[arg-type]
    assert result["connected_after_disconnect"] is False
    assert float(str(result["connect_s"])) < 2


def test_live_accounts_look_like_u(sim_factory: Callable[..., Sim], async_python: str) -> None:
    """Live accounts are U…, not DU…."""
    sim = sim_factory("--trading-mode", "live")
    accounts = run_client(async_python, sim.port, 3, "connect")["accounts"]
    assert isinstance(accounts, list) and str(accounts[0]).startswith("U")


def test_duplicate_client_id_refused_with_326(sim_factory: Callable[..., Sim],
                                              client_python: str) -> None:
    """A second client with a clientId in use gets 326 and fails; the first stays up."""
    sim = sim_factory()
    first = subprocess.Popen([client_python, str(BOT_CLIENT), str(sim.port), "7", "hold", "4"],
                             stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    assert '"connected": true' in first.stdout.readline()
    second = run_client(client_python, sim.port, 7, "connect", 2)
    assert second["ok"] is False
    assert 326 in second["errors"]  # type: ignore[operator]
    out, _ = first.communicate(timeout=30)
    assert '"still_connected": true' in out and '"time_answered": true' in out


def test_concurrent_clients(sim_factory: Callable[..., Sim], client_python: str) -> None:
    """Many clients with different clientIds at once all connect."""
    sim = sim_factory()
    result = run_client(client_python, sim.port, 100, "concurrent", 10)
    assert result["ok"] == 10, result["failures"]
    assert sim.status()["clients"] == []


def test_disconnect_and_reconnect(sim_factory: Callable[..., Sim], client_python: str) -> None:
    """The same clientId can connect again after a clean disconnect."""
    sim = sim_factory()
    result = run_client(client_python, sim.port, 5, "reconnect")
    assert result["time_after_reconnect"] is True

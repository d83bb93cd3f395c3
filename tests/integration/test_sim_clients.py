"""Real bot libraries (ib_async 2.1.0, ib_insync 0.9.86, unmodified) against the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sim_support import BOT_CLIENT, Sim, run_client

IBAPI_BOT = BOT_CLIENT.parent / "ibapi_bot.py"


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


def test_bot_trades_on_paper(sim_factory: Callable[..., Sim], client_python: str) -> None:
    """A bot qualifies AAPL, reads 1 day of bars, buys 5 with a limit order that fills, and
    sees the fill in its position and its cash; the account reports as a paper account does."""
    sim = sim_factory("--trading-mode", "paper")
    result = run_client(client_python, sim.port, 4, "trade")
    assert result["con_id"] == 265598
    assert 1 <= int(str(result["bars"])) <= 7  # regular-hours hourly bars of the last session
    assert result["status"] == "Filled" and result["filled"] == 5
    fill_price = float(str(result["fill_price"]))
    assert abs(fill_price - float(str(result["last_bar_close"]))) < 0.05 * fill_price
    assert result["commission"] == 1.0  # IBKR Pro fixed: 0.005 USD a share, 1 USD minimum
    assert result["position_after"] == float(str(result["position_before"])) + 5
    spent = float(str(result["cash_before"])) - float(str(result["cash_after"]))
    assert abs(spent - (5 * fill_price + 1.0)) < 0.01
    tags = set(result["tags"])  # type: ignore[arg-type]
    assert {"Cushion", "LookAheadNextChange", "DayTradesRemaining", "NetLiquidation",
            "CashBalance", "ExchangeRate", "AccountOrGroup"} <= tags
    assert {"BASE", "USD"} <= set(result["currencies"])  # type: ignore[arg-type]
    assert "paper order" in sim.log() and "filled" in sim.log()


def test_official_ibapi_bot_trades_on_paper(sim_factory: Callable[..., Sim]) -> None:
    """IB's own client (ibapi 10.51, server version 187): the same bot, the same results."""
    pytest.importorskip("ibapi", reason="ibapi-latest is not installed in the test venv")
    sim = sim_factory("--trading-mode", "paper")
    done = subprocess.run([sys.executable, str(IBAPI_BOT), str(sim.port), "5"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["server_version"] == 187
    assert result["con_id"] == 265598 and result["bars"] >= 1
    assert result["status"] == "Filled" and result["exec_shares"] == "5"
    assert result["commission"] == 1.0
    assert result["positions"]["AAPL"] == "105"
    assert float(result["cash_base"]) == pytest.approx(250_000 - 5 * result["avg_fill"] - 1.0)
    assert set(result["errors"]) == {2104, 2106, 2158}  # only the farm notices of a login

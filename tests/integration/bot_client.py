"""A small trading-bot stand-in run as a subprocess under ib_async's or ib_insync's python.

    python bot_client.py PORT CLIENT_ID SCENARIO [ARG]

Prints one JSON object. Scenarios: basic, connect, hold SECONDS, reconnect, concurrent N,
events SECONDS (collect error codes and connection state while connected), trade (qualify AAPL,
read 1 day of bars, buy 5 with a limit order, see it fill, read the position and the cash).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

try:
    from ib_async import IB, LimitOrder, Stock
    LIBRARY = "ib_async"
except ImportError:  # the ib_insync venv
    from ib_insync import IB, LimitOrder, Stock  # type: ignore[no-redef,assignment]
    LIBRARY = "ib_insync"

HOST = "127.0.0.1"


def basic(port: int, client_id: int) -> dict[str, object]:
    ib = IB()
    ib.RequestTimeout = 5
    started = time.monotonic()
    ib.connect(HOST, port, clientId=client_id, timeout=5)
    connect_s = time.monotonic() - started
    now = ib.reqCurrentTime()
    result = {
        "connect_s": round(connect_s, 3),
        "server_version": ib.client.serverVersion(),
        "time": now.timestamp(),
        "accounts": ib.managedAccounts(),
        "positions": [(p.account, p.contract.symbol, p.position) for p in ib.positions()],
        "open_trades": len(ib.openTrades()),
        "summary_tags": sorted({v.tag for v in ib.accountSummary()}),
    }
    ib.disconnect()
    result["connected_after_disconnect"] = ib.isConnected()
    return result


def connect(port: int, client_id: int, timeout: float = 3) -> dict[str, object]:
    ib = IB()
    errors: list[int] = []
    ib.errorEvent += lambda *args: errors.append(args[1])
    try:
        ib.connect(HOST, port, clientId=client_id, timeout=timeout)
    except BaseException as exc:
        return {"ok": False, "error": type(exc).__name__, "errors": errors}
    accounts = ib.managedAccounts()
    ib.disconnect()
    return {"ok": True, "accounts": accounts, "errors": errors}


def hold(port: int, client_id: int, seconds: float) -> dict[str, object]:
    ib = IB()
    ib.RequestTimeout = 3
    errors: list[int] = []
    ib.errorEvent += lambda *args: errors.append(args[1])
    ib.connect(HOST, port, clientId=client_id, timeout=5)
    print(json.dumps({"connected": True}), flush=True)
    ib.sleep(seconds)
    alive = ib.isConnected()
    answered = False
    if alive:
        try:
            answered = ib.reqCurrentTime() is not None
        except BaseException:
            answered = False
    ib.disconnect()
    return {"still_connected": alive, "time_answered": answered, "errors": errors}


def reconnect(port: int, client_id: int) -> dict[str, object]:
    ib = IB()
    ib.connect(HOST, port, clientId=client_id, timeout=5)
    first = ib.managedAccounts()
    ib.disconnect()
    ib.sleep(0.2)
    ib.connect(HOST, port, clientId=client_id, timeout=5)
    second = ib.reqCurrentTime() is not None
    ib.disconnect()
    return {"first_accounts": first, "time_after_reconnect": second}


async def _one(port: int, client_id: int) -> float:
    ib = IB()
    await ib.connectAsync(HOST, port, clientId=client_id, timeout=10)
    await ib.reqCurrentTimeAsync()
    ib.disconnect()
    return client_id


def concurrent(port: int, first_id: int, count: int) -> dict[str, object]:
    async def go() -> list[object]:
        return await asyncio.gather(*(_one(port, first_id + i) for i in range(count)),
                                    return_exceptions=True)
    results = asyncio.run(go())
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    return {"ok": count - len(failures), "failures": failures}


def trade(port: int, client_id: int) -> dict[str, object]:
    ib = IB()
    ib.RequestTimeout = 10
    ib.connect(HOST, port, clientId=client_id, timeout=10)
    account = ib.managedAccounts()[0]
    before = {p.contract.symbol: p.position for p in ib.positions()}
    [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    bars = ib.reqHistoricalData(aapl, "", "1 D", "1 hour", "TRADES", useRTH=True)
    cash_before = float(next(v.value for v in ib.accountValues(account)
                             if v.tag == "TotalCashBalance" and v.currency == "BASE"))
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, round(bars[-1].close * 1.05, 2)))
    deadline = time.monotonic() + 10
    while not trade.isDone() and time.monotonic() < deadline:
        ib.sleep(0.1)
    ib.sleep(0.5)  # the account update that follows the fill
    fill = trade.fills[0] if trade.fills else None
    values = {(v.tag, v.currency): v.value for v in ib.accountValues(account)}
    result = {
        "con_id": aapl.conId,
        "bars": len(bars),
        "last_bar_close": bars[-1].close,
        "status": trade.orderStatus.status,
        "filled": trade.orderStatus.filled,
        "fill_price": fill.execution.price if fill else None,
        "commission": fill.commissionReport.commission if fill else None,
        "position_before": before.get("AAPL"),
        "position_after": {p.contract.symbol: p.position for p in ib.positions()}.get("AAPL"),
        "cash_before": cash_before,
        "cash_after": float(values[("TotalCashBalance", "BASE")]),
        "tags": sorted({tag for tag, _currency in values}),
        "currencies": sorted({currency for _tag, currency in values if currency}),
    }
    ib.disconnect()
    return result


def main() -> None:
    port, client_id, scenario = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    arg = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    if scenario == "basic":
        result = basic(port, client_id)
    elif scenario == "connect":
        result = connect(port, client_id, arg or 3)
    elif scenario == "hold":
        result = hold(port, client_id, arg)
    elif scenario == "reconnect":
        result = reconnect(port, client_id)
    elif scenario == "trade":
        result = trade(port, client_id)
    elif scenario == "concurrent":
        result = concurrent(port, client_id, int(arg))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    result["library"] = LIBRARY
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

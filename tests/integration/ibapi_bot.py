"""A small bot on IB's official ``ibapi`` client (PyPI ibapi-latest): qualify, bars, order, fill.

    python ibapi_bot.py PORT CLIENT_ID

Prints one JSON object: the server version, the contract found, the bar count, the order's
final status and fill, the position and cash afterwards, and every error code received.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from decimal import Decimal

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper


class Bot(EWrapper, EClient):
    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: dict[str, threading.Event] = {}
        self.result: dict[str, object] = {"errors": [], "bars": 0, "positions": {}}
        self.next_id = 0
        self.details: list[object] = []
        self.values: dict[tuple[str, str], str] = {}

    def event(self, name: str) -> threading.Event:
        return self.events.setdefault(name, threading.Event())

    def wait(self, name: str, timeout: float = 10) -> None:
        if not self.event(name).wait(timeout):
            raise SystemExit(json.dumps({**self.result, "timeout": name}, default=str))

    def nextValidId(self, orderId: int) -> None:
        self.next_id = orderId
        self.event("ready").set()

    def error(self, reqId, errorTime, errorCode, errorString, advancedOrderRejectJson=""):  # type: ignore[no-untyped-def]
        self.result["errors"].append(errorCode)  # type: ignore[union-attr]

    def contractDetails(self, reqId: int, contractDetails) -> None:  # type: ignore[no-untyped-def]
        self.details.append(contractDetails.contract)

    def contractDetailsEnd(self, reqId: int) -> None:
        self.event("details").set()

    def historicalData(self, reqId: int, bar) -> None:  # type: ignore[no-untyped-def]
        self.result["bars"] = int(self.result["bars"]) + 1  # type: ignore[call-overload]

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self.event("bars").set()

    def orderStatus(self, orderId, status, filled, remaining, avgFillPrice, *args) -> None:  # type: ignore[no-untyped-def]
        self.result["status"] = status
        self.result["avg_fill"] = avgFillPrice
        if status == "Filled":
            self.event("filled").set()

    def execDetails(self, reqId, contract, execution) -> None:  # type: ignore[no-untyped-def]
        self.result["exec_shares"] = str(execution.shares)

    def commissionAndFeesReport(self, report) -> None:  # type: ignore[no-untyped-def]
        self.result["commission"] = report.commissionAndFees
        self.event("commission").set()

    def position(self, account: str, contract: Contract, position: Decimal, avgCost: float) -> None:
        self.result["positions"][contract.symbol] = str(position)  # type: ignore[index]

    def positionEnd(self) -> None:
        self.event("positions").set()

    def updateAccountValue(self, key: str, val: str, currency: str, accountName: str) -> None:
        self.values[(key, currency)] = val

    def accountDownloadEnd(self, accountName: str) -> None:
        self.event("account").set()


def main() -> None:
    port, client_id = int(sys.argv[1]), int(sys.argv[2])
    bot = Bot()
    bot.connect("127.0.0.1", port, client_id)
    threading.Thread(target=bot.run, daemon=True).start()
    bot.wait("ready")
    bot.result["server_version"] = bot.serverVersion()
    aapl = Contract()
    aapl.symbol, aapl.secType, aapl.exchange, aapl.currency = "AAPL", "STK", "SMART", "USD"
    bot.reqContractDetails(1, aapl)
    bot.wait("details")
    found = bot.details[0]
    bot.result["con_id"] = found.conId  # type: ignore[attr-defined]
    bot.reqHistoricalData(2, found, "", "1 D", "1 hour", "TRADES", 1, 1, False, [])
    bot.wait("bars")
    order = Order()
    order.action, order.orderType, order.totalQuantity = "BUY", "LMT", Decimal(5)
    order.lmtPrice = 10_000.0
    bot.placeOrder(bot.next_id, found, order)
    bot.wait("filled")
    bot.wait("commission")
    bot.reqPositions()
    bot.wait("positions")
    bot.reqAccountUpdates(True, "")
    bot.wait("account")
    bot.result["cash_base"] = bot.values.get(("TotalCashBalance", "BASE"))
    bot.result["net_liquidation"] = bot.values.get(("NetLiquidation", "USD"))
    bot.disconnect()
    time.sleep(0.2)
    print(json.dumps(bot.result, default=str), flush=True)


if __name__ == "__main__":
    main()

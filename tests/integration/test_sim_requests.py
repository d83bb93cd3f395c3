"""Every request IB's official client (ibapi 10.51) defines gets the simulated Gateway's answer.

Each message id of ``ibapi.message.OUT`` is sent through the official client's own method (so
the fields are exactly what it writes at server version 187), and the test waits, within a
bound, for what a real Gateway answers: data, its end marker, or an error code. Requests a real
Gateway takes silently (cancels, log level, market data type) must leave the session answering
``reqCurrentTime`` with no error. Ids the client itself refuses at 187 (they need a newer
Gateway) are sent raw and must get error 320, not silence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sim_support import Sim

ibapi = pytest.importorskip("ibapi", reason="ibapi-latest is not installed in the test venv")

from ibapi.client import EClient  # noqa: E402
from ibapi.contract import Contract  # noqa: E402
from ibapi.execution import ExecutionFilter  # noqa: E402
from ibapi.message import OUT  # noqa: E402
from ibapi.order import Order  # noqa: E402
from ibapi.order_cancel import OrderCancel  # noqa: E402
from ibapi.scanner import ScannerSubscription  # noqa: E402
from ibapi.wrapper import EWrapper  # noqa: E402

BOUND = 5.0  # seconds a real Gateway takes at most for any of these
SILENT = "silent"


class Recorder(EWrapper, EClient):
    """The official client, recording every incoming message id and error."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.seen: list[tuple[int, int]] = []  # (message id, error code or 0)
        self.lock = threading.Condition()
        self.ready = threading.Event()

    def record(self, msg_id: int, code: int = 0) -> None:
        with self.lock:
            self.seen.append((msg_id, code))
            self.lock.notify_all()

    def nextValidId(self, orderId: int) -> None:
        self.next_id = orderId
        self.ready.set()

    def error(self, reqId, errorTime, errorCode, errorString, advancedOrderRejectJson=""):  # type: ignore[no-untyped-def]
        self.record(4, int(errorCode))

    def wait_for(self, check: Callable[[list[tuple[int, int]]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not check(self.seen):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True


def stock(symbol: str = "AAPL") -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "STK", "SMART", "USD"
    return c


def forex() -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "EUR", "CASH", "IDEALPRO", "USD"
    return c


def limit_order(price: float, what_if: bool = False) -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity, o.lmtPrice = "BUY", "LMT", Decimal(1), price
    o.whatIf = what_if
    return o


def requests(bot: Recorder) -> dict[int, tuple[Callable[[], object], object]]:
    """message id -> (how the official client sends it, the answer expected)."""
    scan = ScannerSubscription()
    scan.instrument, scan.locationCode, scan.scanCode = "STK", "STK.US.MAJOR", "TOP_PERC_GAIN"
    oid = bot.next_id
    return {
        OUT.REQ_MKT_DATA: (lambda: bot.reqMktData(11, forex(), "", True, False, []), {57}),
        OUT.CANCEL_MKT_DATA: (lambda: bot.cancelMktData(999), (4, 300)),
        OUT.PLACE_ORDER: (lambda: bot.placeOrder(oid, stock(), limit_order(10_000.0)), {3, 5, 11}),
        OUT.CANCEL_ORDER: (lambda: bot.cancelOrder(oid + 50, OrderCancel()), (4, 10147)),
        OUT.REQ_OPEN_ORDERS: (bot.reqOpenOrders, {53}),
        OUT.REQ_ACCT_DATA: (lambda: bot.reqAccountUpdates(True, ""), {54}),
        OUT.REQ_EXECUTIONS: (lambda: bot.reqExecutions(12, ExecutionFilter()), {55}),
        OUT.REQ_IDS: (lambda: bot.reqIds(1), {9}),
        OUT.REQ_CONTRACT_DATA: (lambda: bot.reqContractDetails(13, stock("MSFT")), {52}),
        OUT.REQ_MKT_DEPTH: (lambda: bot.reqMktDepth(14, stock(), 5, False, []), (4, 354)),
        OUT.CANCEL_MKT_DEPTH: (lambda: bot.cancelMktDepth(998, False), (4, 310)),
        OUT.REQ_NEWS_BULLETINS: (lambda: bot.reqNewsBulletins(True), SILENT),
        OUT.CANCEL_NEWS_BULLETINS: (bot.cancelNewsBulletins, SILENT),
        OUT.SET_SERVER_LOGLEVEL: (lambda: bot.setServerLogLevel(3), SILENT),
        OUT.REQ_AUTO_OPEN_ORDERS: (lambda: bot.reqAutoOpenOrders(True), (4, 321)),
        OUT.REQ_ALL_OPEN_ORDERS: (bot.reqAllOpenOrders, {53}),
        OUT.REQ_MANAGED_ACCTS: (bot.reqManagedAccts, {15}),
        OUT.REQ_FA: (lambda: bot.requestFA(1), (4, 321)),
        OUT.REPLACE_FA: (lambda: bot.replaceFA(15, 1, "<xml/>"), (4, 321)),
        OUT.REQ_HISTORICAL_DATA: (lambda: bot.reqHistoricalData(
            16, stock(), "", "2 D", "1 hour", "TRADES", 1, 1, False, []), {17}),
        OUT.EXERCISE_OPTIONS: (lambda: bot.exerciseOptions(
            17, stock(), 1, 1, "", 0, "", "", False), (4, 200)),
        OUT.REQ_SCANNER_SUBSCRIPTION: (lambda: bot.reqScannerSubscription(18, scan, [], []),
                                       {20}),
        OUT.CANCEL_SCANNER_SUBSCRIPTION: (lambda: bot.cancelScannerSubscription(18), SILENT),
        OUT.REQ_SCANNER_PARAMETERS: (bot.reqScannerParameters, {19}),
        OUT.CANCEL_HISTORICAL_DATA: (lambda: bot.cancelHistoricalData(997), (4, 366)),
        OUT.REQ_CURRENT_TIME: (bot.reqCurrentTime, {49}),
        OUT.REQ_REAL_TIME_BARS: (lambda: bot.reqRealTimeBars(19, stock(), 5, "TRADES", True, []),
                                 (4, 420)),
        OUT.CANCEL_REAL_TIME_BARS: (lambda: bot.cancelRealTimeBars(19), SILENT),
        OUT.REQ_CALC_IMPLIED_VOLAT: (lambda: bot.calculateImpliedVolatility(
            20, stock(), 1.0, 190.0, []), (4, 200)),
        OUT.REQ_CALC_OPTION_PRICE: (lambda: bot.calculateOptionPrice(
            21, stock(), 0.2, 190.0, []), (4, 200)),
        OUT.CANCEL_CALC_IMPLIED_VOLAT: (lambda: bot.cancelCalculateImpliedVolatility(20), SILENT),
        OUT.CANCEL_CALC_OPTION_PRICE: (lambda: bot.cancelCalculateOptionPrice(21), SILENT),
        OUT.REQ_GLOBAL_CANCEL: (lambda: bot.reqGlobalCancel(OrderCancel()), SILENT),
        OUT.REQ_MARKET_DATA_TYPE: (lambda: bot.reqMarketDataType(3), SILENT),
        OUT.REQ_POSITIONS: (bot.reqPositions, {62}),
        OUT.REQ_ACCOUNT_SUMMARY: (lambda: bot.reqAccountSummary(22, "All", "$LEDGER:ALL"), {64}),
        OUT.CANCEL_ACCOUNT_SUMMARY: (lambda: bot.cancelAccountSummary(22), SILENT),
        OUT.CANCEL_POSITIONS: (bot.cancelPositions, SILENT),
        OUT.VERIFY_REQUEST: (lambda: bot.sendMsg(OUT.VERIFY_REQUEST, "1\0bot\x001\0"), {66}),
        OUT.VERIFY_MESSAGE: (lambda: bot.verifyMessage("data"), {66}),
        OUT.QUERY_DISPLAY_GROUPS: (lambda: bot.queryDisplayGroups(23), {67}),
        OUT.SUBSCRIBE_TO_GROUP_EVENTS: (lambda: bot.subscribeToGroupEvents(24, 1), {68}),
        OUT.UPDATE_DISPLAY_GROUP: (lambda: bot.updateDisplayGroup(24, "265598@SMART"), {68}),
        OUT.UNSUBSCRIBE_FROM_GROUP_EVENTS: (lambda: bot.unsubscribeFromGroupEvents(24), SILENT),
        OUT.START_API: (bot.startApi, SILENT),
        OUT.VERIFY_AND_AUTH_REQUEST: (lambda: bot.sendMsg(
            OUT.VERIFY_AND_AUTH_REQUEST, "1\0bot\x001\0key\0"), {70}),
        OUT.VERIFY_AND_AUTH_MESSAGE: (lambda: bot.verifyAndAuthMessage("data", "xyz"), {70}),
        OUT.REQ_POSITIONS_MULTI: (lambda: bot.reqPositionsMulti(25, "", ""), {72}),
        OUT.CANCEL_POSITIONS_MULTI: (lambda: bot.cancelPositionsMulti(25), SILENT),
        OUT.REQ_ACCOUNT_UPDATES_MULTI: (lambda: bot.reqAccountUpdatesMulti(26, "", "", False),
                                        {74}),
        OUT.CANCEL_ACCOUNT_UPDATES_MULTI: (lambda: bot.cancelAccountUpdatesMulti(26), SILENT),
        OUT.REQ_SEC_DEF_OPT_PARAMS: (lambda: bot.reqSecDefOptParams(27, "AAPL", "", "STK",
                                                                    265598), {76}),
        OUT.REQ_SOFT_DOLLAR_TIERS: (lambda: bot.reqSoftDollarTiers(28), {77}),
        OUT.REQ_FAMILY_CODES: (bot.reqFamilyCodes, {78}),
        OUT.REQ_MATCHING_SYMBOLS: (lambda: bot.reqMatchingSymbols(29, "AA"), {79}),
        OUT.REQ_MKT_DEPTH_EXCHANGES: (bot.reqMktDepthExchanges, {80}),
        OUT.REQ_SMART_COMPONENTS: (lambda: bot.reqSmartComponents(30, "9c0001"), {82}),
        OUT.REQ_NEWS_ARTICLE: (lambda: bot.reqNewsArticle(31, "BRFG", "BRFG$1", []),
                               (4, 10172)),
        OUT.REQ_NEWS_PROVIDERS: (bot.reqNewsProviders, {85}),
        OUT.REQ_HISTORICAL_NEWS: (lambda: bot.reqHistoricalNews(32, 265598, "BRFG", "", "", 10,
                                                                []), {87}),
        OUT.REQ_HEAD_TIMESTAMP: (lambda: bot.reqHeadTimeStamp(33, stock(), "TRADES", 1, 1), {88}),
        OUT.REQ_HISTOGRAM_DATA: (lambda: bot.reqHistogramData(34, stock(), True, "1 day"), {89}),
        OUT.CANCEL_HISTOGRAM_DATA: (lambda: bot.cancelHistogramData(34), SILENT),
        OUT.CANCEL_HEAD_TIMESTAMP: (lambda: bot.cancelHeadTimeStamp(33), SILENT),
        OUT.REQ_MARKET_RULE: (lambda: bot.reqMarketRule(26), {93}),
        OUT.REQ_PNL: (lambda: bot.reqPnL(35, "", ""), {94}),
        OUT.CANCEL_PNL: (lambda: bot.cancelPnL(35), SILENT),
        OUT.REQ_PNL_SINGLE: (lambda: bot.reqPnLSingle(36, "", "", 265598), {95}),
        OUT.CANCEL_PNL_SINGLE: (lambda: bot.cancelPnLSingle(36), SILENT),
        OUT.REQ_HISTORICAL_TICKS: (lambda: bot.reqHistoricalTicks(
            37, forex(), "", "", 10, "BID_ASK", 0, True, []), {97}),
        OUT.REQ_TICK_BY_TICK_DATA: (lambda: bot.reqTickByTickData(38, forex(), "BidAsk", 0,
                                                                  False), {99}),
        OUT.CANCEL_TICK_BY_TICK_DATA: (lambda: bot.cancelTickByTickData(38), SILENT),
        OUT.REQ_COMPLETED_ORDERS: (lambda: bot.reqCompletedOrders(False), {102}),
        OUT.REQ_WSH_META_DATA: (lambda: bot.reqWshMetaData(39), (4, 10276)),
        OUT.CANCEL_WSH_META_DATA: (lambda: bot.cancelWshMetaData(39), SILENT),
        OUT.REQ_WSH_EVENT_DATA: (lambda: bot.sendMsg(OUT.REQ_WSH_EVENT_DATA, "40\x00265598\0"),
                                 (4, 10276)),
        OUT.CANCEL_WSH_EVENT_DATA: (lambda: bot.cancelWshEventData(40), SILENT),
        OUT.REQ_USER_INFO: (lambda: bot.reqUserInfo(41), {107}),
    }


# Ids the client refuses to send to a server version below their MIN_SERVER_VER (>= 197).
NEWER_THAN_187 = (OUT.REQ_CURRENT_TIME_IN_MILLIS, OUT.CANCEL_CONTRACT_DATA,
                  OUT.CANCEL_HISTORICAL_TICKS, OUT.REQ_CONFIG, OUT.UPDATE_CONFIG)


def answered(expected: object, start: int) -> Callable[[list[tuple[int, int]]], bool]:
    def check(seen: list[tuple[int, int]]) -> bool:
        new = seen[start:]
        if isinstance(expected, tuple):
            return expected in new
        return any(msg in expected for msg, _code in new)  # type: ignore[operator]
    return check


def test_every_official_request_gets_an_answer(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory("--trading-mode", "paper")
    bot = Recorder()
    original: Any = None

    bot.connect("127.0.0.1", sim.port, 9)

    def interpret(fields: Any, msg_id: int = 0) -> None:
        bot.record(int(msg_id or 0))
        original(fields, msg_id)

    thread = threading.Thread(target=bot.run, daemon=True)
    original = bot.decoder.interpret
    bot.decoder.interpret = interpret  # type: ignore[method-assign]
    thread.start()
    assert bot.ready.wait(10), sim.log()
    assert bot.serverVersion() == 187
    table = requests(bot)
    sendable = {int(m) for m in OUT} - {int(m) for m in NEWER_THAN_187}
    assert set(table) == sendable, "every request the official client defines is covered"
    failures = []
    for msg_id, (send, expected) in table.items():
        start = len(bot.seen)
        send()
        if expected == SILENT:
            bot.reqCurrentTime()
            ok = bot.wait_for(lambda seen, s=start: any(m == 49 for m, _ in seen[s:]), BOUND)
            errors = [code for m, code in bot.seen[start:] if m == 4 and code]
            if not ok or errors:
                failures.append(f"{OUT(msg_id).name}: session answered={ok}, errors={errors}")
        elif not bot.wait_for(answered(expected, start), BOUND):
            failures.append(f"{OUT(msg_id).name}: expected {expected}, got "
                            f"{bot.seen[start:][:8]}")
    for msg_id in NEWER_THAN_187:
        start = len(bot.seen)
        bot.sendMsg(int(msg_id), "1\0")
        if not bot.wait_for(answered((4, 320), start), BOUND):
            failures.append(f"{OUT(msg_id).name} (newer than 187): no error 320")
    bot.disconnect()
    assert not failures, "\n".join(failures)
    assert "Traceback" not in sim.log()

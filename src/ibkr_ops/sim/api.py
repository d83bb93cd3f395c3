"""The API requests of one client connection, answered as an IB Gateway answers them.

Every message id IB's official client (``ibapi`` 10.51) can send has an entry in ``HANDLERS``:
data where the simulator has a model (contracts, bars, ticks, the paper account, orders), else
the end marker or the error code and text a real paper Gateway sends. Requests the real Gateway
never answers (cancels, log level, market data type) are taken without a reply, as there. A
request that cannot be parsed gets error 320 and one log line, and the connection stays up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import history, messages, paper, universe
from .fields import UNSET_DOUBLE, ContractSpec, Malformed, Reader, num, qty, read_contract
from .protocol import encode, error

if TYPE_CHECKING:
    from .apiserver import ClientSession

NO_DEFINITION = "No security definition has been found for the request"
READ_ONLY = ("Error validating request.-'bN' : cause - The API interface is currently in "
             "Read-Only mode.")
DELAYED_AVAILABLE = "Requested market data is not subscribed. Delayed market data is available."
DISPLAYING_DELAYED = "Requested market data is not subscribed. Displaying delayed market data."
NEWS_PROVIDERS = (("BRFG", "Briefing.com General Market Columns"),
                  ("BRFUPDN", "Briefing.com Analyst Actions"), ("DJNL", "Dow Jones Newsletters"))
# Delayed tick types (bid, ask, last, sizes, high, low, volume, close, open) and live ones.
DELAYED = {"bid": 66, "ask": 67, "last": 68, "bid_size": 69, "ask_size": 70, "last_size": 71,
           "high": 72, "low": 73, "volume": 74, "close": 75, "open": 76, "timestamp": 88}
LIVE = {"bid": 1, "ask": 2, "last": 4, "bid_size": 0, "ask_size": 3, "last_size": 5,
        "high": 6, "low": 7, "volume": 8, "close": 9, "open": 14, "timestamp": 45}
STREAM_INTERVAL = 1.0
CHECK_INTERVAL = 0.5
V_USER_INFO = 167
V_HISTORICAL_SCHEDULE = 165
V_CME_TAGGING = 192
Handler = Callable[["Api", Reader], None]
_CHECKERS: dict[int, asyncio.Task[None]] = {}


class Api:
    """One API client's requests and subscriptions."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.gw = session.gw
        self.market_data_type = 1
        self.account_updates: str | None = None
        self.positions_wanted = False
        self.pnl: dict[int, tuple[str, int | None]] = {}
        self.streams: dict[int, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------ plumbing
    @property
    def version(self) -> int:
        return self.session.version

    @property
    def paper(self) -> paper.Paper:
        return self.gw.paper

    def send(self, data: bytes) -> None:
        self.session.send(data)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(error(req_id, code, text, self.version))

    def handle(self, fields: list[str]) -> None:
        """Answer one request; a malformed one gets error 320 and one log line, not a traceback."""
        name = fields[0]
        handler = HANDLERS.get(name)
        if handler is None:
            self.gw.sim(f"API client {self.session.client_id}: unknown message id {name!r}")
            self.error(-1, 320, f"Error reading request:Message id {name} is not supported")
            return
        try:
            handler(self, Reader(fields))
        except Malformed as exc:
            self.gw.sim(f"API client {self.session.client_id}: malformed request "
                        f"(message id {name}): {exc}")
            self.error(-1, 320, f"Error reading request. Unable to parse data. {exc}")

    def close(self) -> None:
        for task in self.streams.values():
            task.cancel()
        self.streams.clear()

    def _spawn(self, req_id: int, coro: object) -> None:
        old = self.streams.pop(req_id, None)
        if old is not None:
            old.cancel()
        self.streams[req_id] = asyncio.ensure_future(coro)  # type: ignore[call-overload]

    def _cancel(self, req_id: int) -> bool:
        task = self.streams.pop(req_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    def _instrument(self, req_id: int, spec: ContractSpec) -> universe.Instrument | None:
        found = universe.matching(spec)
        if not found:
            self.error(req_id, 200, NO_DEFINITION)
            return None
        return found[0]

    def _accounts(self) -> list[str]:
        return list(self.gw.cfg.accounts)

    # ------------------------------------------------------------------ account
    def account_rows(self, name: str) -> list[tuple[str, str, str]]:
        """updateAccountValue rows (key, value, currency) as a paper account reports them."""
        return account_values(self.paper, name)

    def push_account(self, name: str) -> None:
        for key, value, currency in self.account_rows(name):
            self.send(encode(6, 2, key, value, currency, name))
        for inst, pos, mark in self.paper.holdings(name):
            self.send(messages.portfolio(name, inst, pos.quantity, mark, pos.avg_cost,
                                         pos.realized))
        self.send(encode(8, 1, dt.datetime.now(universe.NEW_YORK).strftime("%H:%M")))

    def push_pnl(self) -> None:
        for req_id, (account, con_id) in self.pnl.items():
            figures = self.paper.values(account)
            if con_id is None:
                self.send(encode(94, req_id, num(round(figures["unrealized"] * 0.01, 2)),
                                 num(round(figures["unrealized"], 2)),
                                 num(round(figures["realized"], 2))))
                continue
            pos = self.paper.account(account).positions.get(con_id)
            inst = universe.by_con_id(con_id)
            if pos is None or inst is None or not pos.quantity:
                self.send(encode(95, req_id, 0, num(UNSET_DOUBLE), num(UNSET_DOUBLE),
                                 num(UNSET_DOUBLE), num(UNSET_DOUBLE)))
                continue
            value = pos.quantity * self.paper.mark(inst) * inst.factor
            unrealized = value - pos.quantity * pos.avg_cost
            self.send(encode(95, req_id, qty(pos.quantity), num(round(unrealized * 0.01, 2)),
                             num(round(unrealized, 2)), num(round(pos.realized, 2)),
                             num(round(value, 2))))


def _money(value: float) -> str:
    return f"{value:.2f}"


LEDGER_TAGS = ("CashBalance", "TotalCashBalance", "AccruedCash", "StockMarketValue",
               "OptionMarketValue", "FutureOptionValue", "FuturesPNL", "NetLiquidationByCurrency",
               "UnrealizedPnL", "RealizedPnL", "ExchangeRate", "FundValue", "NetDividend",
               "MutualFundValue", "MoneyMarketFundValue", "CorporateBondValue", "TBondValue",
               "TBillValue", "WarrantValue", "FxCashBalance", "AccountOrGroup", "RealCurrency",
               "IssuerOptionValue", "Cryptocurrency")
NON_MONEY = ("AccountType", "Cushion", "DayTradesRemaining", "DayTradesRemainingT+1",
             "DayTradesRemainingT+2", "DayTradesRemainingT+3", "DayTradesRemainingT+4",
             "HighestSeverity", "Leverage", "LookAheadNextChange")


def summary_values(book: paper.Paper, name: str) -> dict[str, str]:
    """The account-wide tags of reqAccountSummary, in the base currency."""
    v = book.values(name)
    net = v["net"]
    available = net - v["init"]
    excess = net - v["maint"]
    close = dt.datetime.now(universe.NEW_YORK).replace(hour=16, minute=0, second=0,
                                                       microsecond=0)
    if close.timestamp() <= time.time():
        close += dt.timedelta(days=1)
    figures = {
        "NetLiquidation": net, "TotalCashValue": v["cash"], "SettledCash": v["cash"],
        "AccruedCash": 0.0, "BuyingPower": max(0.0, available) * 4,
        "EquityWithLoanValue": net, "PreviousDayEquityWithLoanValue": net,
        "GrossPositionValue": v["gross"], "RegTEquity": net, "RegTMargin": v["gross"] * 0.5,
        "SMA": max(0.0, net - v["gross"] * 0.5), "InitMarginReq": v["init"],
        "MaintMarginReq": v["maint"], "AvailableFunds": available, "ExcessLiquidity": excess,
        "FullInitMarginReq": v["init"], "FullMaintMarginReq": v["maint"],
        "FullAvailableFunds": available, "FullExcessLiquidity": excess,
        "LookAheadInitMarginReq": v["init"], "LookAheadMaintMarginReq": v["maint"],
        "LookAheadAvailableFunds": available, "LookAheadExcessLiquidity": excess,
    }
    text = {tag: _money(value) for tag, value in figures.items()}
    text.update({
        "AccountType": "INDIVIDUAL", "Cushion": f"{excess / net:.6f}" if net else "0",
        "DayTradesRemaining": "-1" if net >= 25_000 else "3",
        "HighestSeverity": "0", "Leverage": f"{v['gross'] / net:.2f}" if net else "0",
        "LookAheadNextChange": str(int(close.timestamp())),
    })
    for day in range(1, 5):
        text[f"DayTradesRemainingT+{day}"] = text["DayTradesRemaining"]
    return text


def ledger(book: paper.Paper, name: str, currency: str) -> dict[str, str]:
    """The $LEDGER rows of one currency (BASE is the account's USD view of everything)."""
    acct = book.account(name)
    v = book.values(name)
    rate = v["rate"] if currency == "EUR" else 1.0
    if currency == "BASE":
        cash, stock, futures, unrealized, realized = (v["cash"], v["stock"], v["futures_pnl"],
                                                      v["unrealized"], v["realized"])
    else:
        cash = acct.cash.get(currency, 0.0)
        held = [(i, p, m) for i, p, m in book.holdings(name) if i.currency == currency]
        stock = sum(p.quantity * m * i.factor for i, p, m in held if i.sec_type == "STK")
        futures = sum(p.quantity * m * i.factor - p.quantity * p.avg_cost
                      for i, p, m in held if i.sec_type == "FUT")
        unrealized = sum(p.quantity * m * i.factor - p.quantity * p.avg_cost for i, p, m in held)
        realized = acct.realized if currency == "USD" else 0.0
    rows = dict.fromkeys(LEDGER_TAGS, "0.00")
    rows.update({
        "CashBalance": _money(cash), "TotalCashBalance": _money(cash),
        "StockMarketValue": _money(stock), "FuturesPNL": _money(futures),
        "NetLiquidationByCurrency": _money(cash + stock + futures),
        "UnrealizedPnL": _money(unrealized), "RealizedPnL": _money(realized),
        "ExchangeRate": f"{rate:.6f}".rstrip("0").rstrip(".") if rate != 1 else "1.00",
        "AccountOrGroup": name, "RealCurrency": "USD" if currency == "BASE" else currency,
        "Cryptocurrency": "0.00", "FxCashBalance": _money(cash if currency not in
                                                          ("BASE", "USD") else 0.0),
    })
    return rows


def currencies(book: paper.Paper, name: str) -> list[str]:
    held = {c for c, amount in book.account(name).cash.items() if amount or c == "USD"}
    return ["BASE", *sorted(held)]


def account_values(book: paper.Paper, name: str) -> list[tuple[str, str, str]]:
    summary = summary_values(book, name)
    rows: list[tuple[str, str, str]] = [("AccountCode", name, ""), ("AccountReady", "true", ""),
                                        ("AccountType", "INDIVIDUAL", "")]
    for tag, value in summary.items():
        if tag == "AccountType":
            continue
        currency = "" if tag in NON_MONEY else "USD"
        rows.append((tag, value, currency))
        if tag in ("AvailableFunds", "BuyingPower", "EquityWithLoanValue", "ExcessLiquidity",
                   "InitMarginReq", "MaintMarginReq", "NetLiquidation", "TotalCashValue",
                   "GrossPositionValue", "Leverage"):
            rows.append((f"{tag}-S", value, currency))
    rows += [("NLVAndMarginInReview", "false", ""), ("SegmentTitle-S", "US Securities", ""),
             ("TradingType-S", "STKNOPT", ""), ("WhatIfPMEnabled", "true", ""),
             ("Billable", "0.00", "USD"), ("ColumnPrio-S", "1", "")]
    for currency in currencies(book, name):
        for tag, value in ledger(book, name, currency).items():
            rows.append((tag, value, currency))
        rows.append(("Currency", currency, currency))
    return rows


# ---------------------------------------------------------------------------- handlers
def _current_time(api: Api, r: Reader) -> None:
    api.send(encode(49, 1, int(time.time())))


def _managed_accounts(api: Api, r: Reader) -> None:
    api.send(encode(15, 1, ",".join(api._accounts())))


def _ids(api: Api, r: Reader) -> None:
    api.send(encode(9, 1, api.gw.next_order_id))


def _nothing(api: Api, r: Reader) -> None:
    """A request the real Gateway takes without a reply."""


def _market_data_type(api: Api, r: Reader) -> None:
    r.integer("version")
    kind = r.integer("marketDataType")
    api.market_data_type = kind if kind in (1, 2, 3, 4) else 1


def _positions(api: Api, r: Reader) -> None:
    api.positions_wanted = True
    for account in api._accounts():
        for inst, pos, _mark in api.paper.holdings(account):
            api.send(messages.position(account, inst, pos.quantity, pos.avg_cost))
    api.send(encode(62, 1))


def _cancel_positions(api: Api, r: Reader) -> None:
    api.positions_wanted = False


def _account_updates(api: Api, r: Reader) -> None:
    r.integer("version")
    subscribe = r.flag("subscribe")
    account = r.text("acctCode") if r.remaining() else ""
    if not subscribe:
        api.account_updates = None
        return
    name = account or api._accounts()[0]
    api.account_updates = name
    api.push_account(name)
    api.send(encode(54, 1, name))


def _multi(api: Api, r: Reader) -> tuple[int, str, list[str]]:
    """reqId, modelCode and the accounts a *Multi request names ("All" or empty: every one)."""
    r.integer("version")
    req_id = r.integer("reqId")
    account = r.text("account")
    model = r.text("modelCode") if r.remaining() else ""
    return req_id, model, [account] if account and account != "All" else api._accounts()


def _account_updates_multi(api: Api, r: Reader) -> None:
    req_id, model, names = _multi(api, r)
    for name in names:
        for key, value, currency in api.account_rows(name):
            api.send(encode(73, 1, req_id, name, model, key, value, currency))
    api.send(encode(74, 1, req_id))


def _positions_multi(api: Api, r: Reader) -> None:
    req_id, model, names = _multi(api, r)
    for name in names:
        for inst, pos, _mark in api.paper.holdings(name):
            api.send(encode(71, 1, req_id, name, inst.con_id, inst.symbol, inst.sec_type,
                            inst.expiry, 0.0, "", inst.multiplier, "", inst.currency,
                            inst.local_symbol, inst.trading_class, qty(pos.quantity),
                            num(pos.avg_cost), model))
    api.send(encode(72, 1, req_id))


def _account_summary(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    r.text("groupName")
    wanted = [t.strip() for t in r.text("tags").split(",") if t.strip()]
    for name in api._accounts():
        summary = summary_values(api.paper, name)
        for tag in wanted:
            if tag.startswith("$LEDGER"):
                which = tag.partition(":")[2].upper() or "BASE"
                chosen = currencies(api.paper, name) if which == "ALL" else [which]
                for currency in chosen:
                    rows = ledger(api.paper, name, currency)
                    for key, value in rows.items():
                        api.send(encode(63, 1, req_id, name, key, value, currency))
                    api.send(encode(63, 1, req_id, name, "Currency", currency, currency))
            elif tag in summary:
                currency = "" if tag in NON_MONEY else "USD"
                api.send(encode(63, 1, req_id, name, tag, summary[tag], currency))
    api.send(encode(64, 1, req_id))


def _pnl(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    account = r.text("account") or api._accounts()[0]
    api.pnl[req_id] = (account, None)
    api.push_pnl()


def _pnl_single(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    account = r.text("account") or api._accounts()[0]
    r.text("modelCode")
    api.pnl[req_id] = (account, r.integer("conid", 0))
    api.push_pnl()


def _cancel_pnl(api: Api, r: Reader) -> None:
    api.pnl.pop(r.integer("reqId"), None)


def _contract_details(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    spec = read_contract(r)
    found = universe.matching(spec)
    if not found:
        api.error(req_id, 200, NO_DEFINITION)
        return
    for inst in found:
        exchange = spec.exchange.upper() or inst.exchange
        api.send(messages.contract_details(api.version, req_id, inst, exchange))
    api.send(messages.contract_details_end(req_id))


def _matching_symbols(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    pattern = r.text("pattern").upper()
    seen: dict[str, universe.Instrument] = {}
    for inst in universe.instruments():
        if inst.sec_type in ("STK", "CASH") and (inst.symbol.startswith(pattern) or
                                                  pattern in inst.long_name):
            seen.setdefault(inst.symbol, inst)
    api.send(messages.symbol_samples(api.version, req_id, list(seen.values())))


def _head_timestamp(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    spec = read_contract(r)
    r.flag("includeExpired")
    r.integer("useRTH", 0)
    what = r.text("whatToShow")
    format_date = r.integer("formatDate", 1)
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    try:
        api.send(encode(88, req_id, history.head_timestamp(inst, what, format_date)))
    except history.HistoryError as exc:
        api.error(req_id, exc.code, exc.text)


def _historical_data(api: Api, r: Reader) -> None:
    if api.version < 124:
        r.integer("version")
    req_id = r.integer("reqId")
    spec = read_contract(r)
    r.flag("includeExpired")
    end = r.text("endDateTime")
    bar_size = r.text("barSizeSetting")
    duration = r.text("durationStr")
    rth = r.flag("useRTH")
    what = r.text("whatToShow")
    format_date = r.integer("formatDate", 1)
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    if what.upper() == "SCHEDULE":
        _schedule(api, req_id, inst, end, duration, rth)
        return
    try:
        bars, start_label, end_label = history.bars(inst, end, duration, bar_size, what, rth,
                                                    format_date)
    except history.HistoryError as exc:
        api.error(req_id, exc.code, exc.text)
        return
    fields: list[object] = [17]
    if api.version < 124:
        fields.append(3)
    fields += [req_id, start_label, end_label, len(bars)]
    for bar in bars:
        fields += [bar.date, num(bar.open), num(bar.high), num(bar.low), num(bar.close),
                   qty(bar.volume), num(bar.wap)]
        if api.version < 124:
            fields.append("false")
        fields.append(bar.count)
    api.send(encode(*fields))


def _schedule(api: Api, req_id: int, inst: universe.Instrument, end: str, duration: str,
              rth: bool) -> None:
    if api.version < V_HISTORICAL_SCHEDULE:
        api.error(req_id, 321, "Error validating request.-'bP' : cause - Historical data query "
                  "type [SCHEDULE] is invalid.")
        return
    try:
        stop = history.parse_end(end)
        window = universe.sessions_before(inst, stop, max(1, int(duration.split(maxsplit=1)[0])), rth)
    except (history.HistoryError, ValueError, IndexError):
        api.error(req_id, 321, "Error validating request.-'bP' : cause - Historical data query "
                  f"duration string [{duration}] is invalid.")
        return

    def label(when: float) -> str:
        return dt.datetime.fromtimestamp(when, inst.zone).strftime("%Y%m%d-%H:%M:%S")

    fields: list[object] = [106, req_id, label(window[0].start), label(window[-1].end),
                            inst.zone_id, len(window)]
    for s in window:
        fields += [label(s.start), label(s.end), s.day.strftime("%Y%m%d")]
    api.send(encode(*fields))


def _historical_ticks(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    spec = read_contract(r)
    r.flag("includeExpired")
    start = r.text("startDateTime")
    end = r.text("endDateTime")
    count = r.integer("numberOfTicks", 1000)
    what = r.text("whatToShow").upper()
    rth = r.flag("useRth")
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    try:
        found = history.ticks(inst, start, end, count, what, rth)
    except history.HistoryError as exc:
        api.error(req_id, exc.code, exc.text)
        return
    fields: list[object]
    if what == "BID_ASK":
        fields = [97, req_id, len(found)]
        for moment, bid, ask, _last, size in found:
            fields += [moment, 0, num(bid), num(ask), qty(size), qty(size)]
    elif what == "MIDPOINT":
        fields = [96, req_id, len(found)]
        for moment, bid, ask, _last, _size in found:
            fields += [moment, "", num(round((bid + ask) / 2, 6)), 0]
    else:
        fields = [98, req_id, len(found)]
        for moment, _bid, _ask, last, size in found:
            fields += [moment, 0, num(last), qty(size), inst.primary or inst.exchange, ""]
    fields.append(1)
    api.send(encode(*fields))


def _histogram(api: Api, r: Reader) -> None:
    req_id = r.integer("tickerId")
    spec = read_contract(r)
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    now = time.time()
    prices: dict[float, float] = {}
    for k in range(0, 390 * 60, 600):
        p = universe.price(inst, now - k)
        prices[p] = prices.get(p, 0.0) + universe.size(inst, now - k)
    fields: list[object] = [89, req_id, len(prices)]
    for p, s in sorted(prices.items()):
        fields += [num(p), qty(s)]
    api.send(encode(*fields))


def _market_data(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    spec = read_contract(r)
    if spec.sec_type == "BAG":
        r.skip(4 * r.integer("comboLegsCount", 0))
    if r.flag("deltaNeutral"):
        r.skip(3)
    r.text("genericTickList")
    snapshot = r.flag("snapshot")
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    live = inst.sec_type == "CASH"  # IDEALPRO quotes are free; the rest needs a subscription
    kind = api.market_data_type
    if not live and kind in (1, 2):
        api.error(req_id, 354, f"{DELAYED_AVAILABLE}{inst.symbol} {inst.primary or inst.exchange}"
                  f".{'NMS' if inst.sec_type == 'STK' else 'TOP'}/TOP/ALL")
        return
    if not live:
        api.error(req_id, 10167, DISPLAYING_DELAYED)
        api.send(encode(58, 1, req_id, 3))
    else:
        api.send(encode(58, 1, req_id, 1))
    api.send(encode(81, req_id, num(inst.min_tick), "9c0001", 3))
    codes = LIVE if live else DELAYED
    _send_quote(api, req_id, inst, codes, full=True)
    if snapshot:
        api.send(encode(57, 1, req_id))
        return
    api._spawn(req_id, _stream(api, req_id, inst, codes))


def _send_quote(api: Api, req_id: int, inst: universe.Instrument, codes: dict[str, int],
                full: bool) -> None:
    now = time.time()
    bid, ask, last = universe.quote(inst, now)
    api.send(messages.tick_price(req_id, codes["bid"], bid, universe.size(inst, now)))
    api.send(messages.tick_price(req_id, codes["ask"], ask, universe.size(inst, now + 1)))
    if inst.sec_type != "CASH":
        api.send(messages.tick_price(req_id, codes["last"], last, universe.size(inst, now, 0.2)))
        api.send(messages.tick_string(req_id, codes["timestamp"], str(int(now))))
    if not full:
        return
    day = universe.sessions_before(inst, now, 2, True)
    if day:
        opened = universe.price(inst, day[-1].start)
        closed = universe.price(inst, day[0].end) if len(day) > 1 else opened
        samples = [universe.price(inst, day[-1].start + k * 600)
                   for k in range(int(max(0.0, min(now, day[-1].end) - day[-1].start) // 600) + 1)]
        api.send(messages.tick_price(req_id, codes["high"], max(samples)))
        api.send(messages.tick_price(req_id, codes["low"], min(samples)))
        api.send(messages.tick_price(req_id, codes["close"], closed))
        api.send(messages.tick_price(req_id, codes["open"], opened))
    if inst.sec_type != "CASH":
        api.send(messages.tick_size(req_id, codes["volume"], universe.size(inst, now, 400)))


async def _stream(api: Api, req_id: int, inst: universe.Instrument, codes: dict[str, int]) -> None:
    while True:
        await asyncio.sleep(STREAM_INTERVAL)
        _send_quote(api, req_id, inst, codes, full=False)


def _cancel_market_data(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    if not api._cancel(req_id):
        api.error(req_id, 300, f"Can't find EId with tickerId:{req_id}")


def _real_time_bars(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    spec = read_contract(r)
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    if inst.sec_type != "CASH":
        venue = "ISLAND" if inst.primary == "NASDAQ" else inst.primary or inst.exchange
        api.error(req_id, 420, f"Invalid Real-time Query:No market data permissions for {venue} "
                  f"{inst.sec_type}")
        return
    api._spawn(req_id, _bars_stream(api, req_id, inst))


async def _bars_stream(api: Api, req_id: int, inst: universe.Instrument) -> None:
    while True:
        now = time.time()
        start = int(now // 5 * 5)
        await asyncio.sleep(start + 5 - now)
        points = [universe.price(inst, start + k) for k in range(6)]
        api.send(encode(50, 3, req_id, start, num(points[0]), num(max(points)), num(min(points)),
                        num(points[-1]), -1, -1, -1))


def _cancel_stream(api: Api, r: Reader) -> None:
    r.integer("version")
    api._cancel(r.integer("reqId"))


def _tick_by_tick(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    spec = read_contract(r)
    tick_type = r.text("tickType")
    inst = api._instrument(req_id, spec)
    if inst is None:
        return
    if inst.sec_type != "CASH" or tick_type not in ("BidAsk", "MidPoint"):
        venue = "ISLAND" if inst.primary == "NASDAQ" else inst.primary or inst.exchange
        api.error(req_id, 10189, f"Failed to request tick-by-tick data.No market data "
                  f"permissions for {venue} {inst.sec_type}")
        return
    api._spawn(req_id, _tick_stream(api, req_id, inst, tick_type))


async def _tick_stream(api: Api, req_id: int, inst: universe.Instrument, kind: str) -> None:
    while True:
        now = time.time()
        bid, ask, _last = universe.quote(inst, now)
        if kind == "BidAsk":
            api.send(encode(99, req_id, 3, int(now), num(bid), num(ask),
                            qty(universe.size(inst, now)), qty(universe.size(inst, now + 1)), 0))
        else:
            api.send(encode(99, req_id, 4, int(now), num(round((bid + ask) / 2, 6))))
        await asyncio.sleep(STREAM_INTERVAL)


def _cancel_tick_by_tick(api: Api, r: Reader) -> None:
    api._cancel(r.integer("reqId"))


def _market_depth(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    spec = read_contract(r)
    if api._instrument(req_id, spec) is not None:
        api.error(req_id, 354, "Requested market data is not subscribed.")


def _cancel_market_depth(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    api.error(req_id, 310, f"Can't find the subscribed market depth with tickerId:{req_id}")


def _cancel_historical(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    api.error(req_id, 366, f"No historical data query found for ticker id:{req_id}")


def _scanner_parameters(api: Api, r: Reader) -> None:
    api.send(encode(19, 1, messages.EMPTY_SCANNER_XML))


def _scanner_subscription(api: Api, r: Reader) -> None:
    if api.version < 143:
        r.integer("version")
    req_id = r.integer("reqId")
    r.text("numberOfRows")
    instrument = r.text("instrument").upper()
    stocks = [i for i in universe.instruments() if i.sec_type == instrument]
    fields: list[object] = [20, 3, req_id, len(stocks)]
    for rank, inst in enumerate(stocks):
        fields += [rank, inst.con_id, inst.symbol, inst.sec_type, inst.expiry, 0.0, "",
                   inst.exchange, inst.currency, inst.local_symbol, inst.trading_class,
                   inst.trading_class, "", "", "", ""]
    api.send(encode(*fields))


def _security_option_params(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    api.send(encode(76, req_id))  # the simulated market lists no options


def _option_calculation(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    api.error(req_id, 200, NO_DEFINITION)  # no option is listed, so there is nothing to price


def _exercise(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    api.error(req_id, 200, NO_DEFINITION)


def _soft_dollar_tiers(api: Api, r: Reader) -> None:
    api.send(encode(77, r.integer("reqId"), 0))


def _family_codes(api: Api, r: Reader) -> None:
    accounts = api._accounts()
    fields: list[object] = [78, len(accounts)]
    for name in accounts:
        fields += [name, ""]
    api.send(encode(*fields))


def _depth_exchanges(api: Api, r: Reader) -> None:
    api.send(messages.depth_exchanges(api.version))


def _smart_components(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    rows = [(1, "NYSE", "N"), (2, "ARCA", "P"), (3, "ISLAND", "Q"), (4, "BATS", "Z"),
            (5, "IEX", "V")]
    fields: list[object] = [82, req_id, len(rows)]
    for row in rows:
        fields += list(row)
    api.send(encode(*fields))


def _market_rule(api: Api, r: Reader) -> None:
    rule = r.integer("marketRuleId")
    increments = {"26": [(0.0, 0.01)], "239": [(0.0, 0.00005)], "67": [(0.0, 0.25)]}
    rows = increments.get(str(rule), [(0.0, 0.01)])
    fields: list[object] = [93, rule, len(rows)]
    for low, step in rows:
        fields += [num(low), num(step)]
    api.send(encode(*fields))


def _news_providers(api: Api, r: Reader) -> None:
    fields: list[object] = [85, len(NEWS_PROVIDERS)]
    for code, name in NEWS_PROVIDERS:
        fields += [code, name]
    api.send(encode(*fields))


def _news_article(api: Api, r: Reader) -> None:
    req_id = r.integer("reqId")
    api.error(req_id, 10172, "Failed to request news article: No data available")


def _historical_news(api: Api, r: Reader) -> None:
    api.send(encode(87, r.integer("reqId"), 0))


def _fa(api: Api, r: Reader) -> None:
    api.error(-1, 321, "Error validating request.-'bd' : cause - FA data operations ignored "
              "for non FA customers.")


def _replace_fa(api: Api, r: Reader) -> None:
    r.integer("version")
    r.integer("faDataType")
    r.text("cxml")
    req_id = r.integer("reqId") if r.remaining() else -1
    api.error(req_id, 321, "Error validating request.-'bd' : cause - FA data operations "
              "ignored for non FA customers.")


def _display_groups(api: Api, r: Reader) -> None:
    r.integer("version")
    api.send(encode(67, 1, r.integer("reqId"), ""))  # the Gateway has no linked windows


def _display_group_events(api: Api, r: Reader) -> None:
    r.integer("version")
    api.send(encode(68, 1, r.integer("reqId"), ""))


def _update_display_group(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    api.send(encode(68, 1, req_id, r.text("contractInfo")))


def _verify(api: Api, r: Reader) -> None:
    api.send(encode(66, 1, "false", "API client verification is not enabled for this login"))


def _verify_and_auth(api: Api, r: Reader) -> None:
    api.send(encode(70, 1, "false", "API client verification is not enabled for this login"))


def _wsh(api: Api, r: Reader) -> None:
    api.error(r.integer("reqId"), 10276, "News feed is not allowed.")


def _user_info(api: Api, r: Reader) -> None:
    api.send(encode(107, r.integer("reqId"), ""))


def _executions(api: Api, r: Reader) -> None:
    r.integer("version")
    req_id = r.integer("reqId")
    client = r.integer("clientId", 0) if r.remaining() else 0
    account = r.text("acctCode") if r.remaining() else ""
    r.text("time") if r.remaining() else ""
    symbol = r.text("symbol").upper() if r.remaining() else ""
    for e in api.paper.executions:
        if (client and e.client_id != client) or (account and e.account != account) or \
                (symbol and e.inst.symbol != symbol):
            continue
        api.send(messages.exec_details(api.version, req_id, e))
    api.send(messages.exec_details_end(req_id))
    for e in api.paper.executions:
        api.send(messages.commission_report(e))


def _open_orders(api: Api, r: Reader) -> None:
    everyone = r._fields[0] == "16" or api.session.client_id == 0
    for order in api.paper.resting():
        if everyone or order.client_id == api.session.client_id:
            api.send(messages.open_order(api.version, order))
            api.send(messages.order_status(api.version, order))
    api.send(messages.open_order_end())


def _completed_orders(api: Api, r: Reader) -> None:
    api.send(encode(102))


# ---------------------------------------------------------------------------- orders
def _place_order(api: Api, r: Reader) -> None:  # noqa: PLR0911, PLR0912, PLR0915 - the layout
    v = api.version
    if v < 145:
        r.integer("version")
    order_id = r.integer("orderId")
    spec = read_contract(r)
    r.skip(2)  # secIdType, secId
    action = r.text("action").upper()
    quantity = r.number("totalQuantity")
    order_type = r.text("orderType").upper()
    limit = r.number("lmtPrice", UNSET_DOUBLE)
    aux = r.number("auxPrice", UNSET_DOUBLE)
    tif = r.text("tif") or "DAY"
    r.text("ocaGroup")
    account = r.text("account")
    r.skip(2)  # openClose, origin
    order_ref = r.text("orderRef")
    r.flag("transmit")
    parent_id = r.integer("parentId", 0)
    r.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = r.flag("outsideRth")
    r.flag("hidden")
    api.gw.next_order_id = max(api.gw.next_order_id, order_id + 1)
    inst = universe.matching(spec)[0] if spec.sec_type != "BAG" and universe.matching(spec) \
        else None
    if inst is None:
        api.error(order_id, 200, NO_DEFINITION)
        return
    r.skip(7)  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPct
    if v < 177:
        r.skip(1)
    if v >= 103:
        r.skip(1)
    r.skip(3 if v >= 51 else 2)  # shortSaleSlot, designatedLocation, exemptCode
    r.skip(1 + 8)  # ocaType, rule80A … nbboPriceCap
    r.skip(6 + 1)  # auctionStrategy … stockRangeUpper, overridePercentageConstraints
    r.skip(2)  # volatility, volatilityType
    dn_type = r.text("deltaNeutralOrderType")
    r.skip(1)
    if dn_type:
        r.skip(8)
    r.skip(3 + 1 + 2)  # continuousUpdate, referencePriceType, trailStopPrice, trailingPct, scale
    increment = r.number("scalePriceIncrement", UNSET_DOUBLE)
    if increment != UNSET_DOUBLE and increment > 0:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if r.text("hedgeType"):
        r.skip(1)
    r.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if r.flag("deltaNeutralContract"):
        r.skip(3)
    if r.text("algoStrategy"):
        r.skip(2 * r.integer("algoParamsCount", 0))
    r.text("algoId")
    what_if = r.flag("whatIf")
    if api.gw.cfg.read_only_api:
        api.error(order_id, 321, READ_ONLY)
        return
    existing = api.paper.orders.get(order_id)
    if existing is not None and existing.done:
        api.error(order_id, 103, "Duplicate order id")
        return
    if order_type not in paper.ORDER_TYPES:
        api.error(order_id, 387, "Unsupported order type for this exchange and security type.")
        return
    if quantity <= 0:
        api.error(order_id, 434, "The order size cannot be zero.")
        return
    order = paper.Order(
        order_id=order_id, client_id=api.session.client_id or 0,
        perm_id=existing.perm_id if existing else api.paper.next_perm(),
        account=account or api._accounts()[0], inst=inst,
        exchange=spec.exchange.upper() or inst.exchange, action=action, quantity=quantity,
        order_type=order_type, limit=limit, aux=aux, tif=tif, outside_rth=outside_rth,
        order_ref=order_ref, parent_id=parent_id)
    if what_if:
        api.send(messages.open_order(v, order, api.paper.what_if(order)))
        return
    api.paper.orders[order_id] = order
    api.gw.sim(f"paper order {order_id}: {action} {quantity:g} {inst.local_symbol} "
               f"{order_type}{'' if limit == UNSET_DOUBLE else f' {limit:g}'}")
    api.send(messages.open_order(v, order))
    api.send(messages.order_status(v, order))
    fill = api.paper.fill_price(order)
    if fill is None:
        order.status = "Submitted"
        api.send(messages.open_order(v, order))
        api.send(messages.order_status(v, order))
        _ensure_checker(api.gw)
        return
    report_fill(api.gw, order, api.paper.execute(order, fill))


def report_fill(gw: object, order: paper.Order, execution: paper.Execution) -> None:
    """Tell the order's client (if connected) and every subscriber what one fill changed."""
    clients = getattr(gw, "clients", {})
    owner = clients.get(order.client_id)
    gw.sim(f"paper order {order.order_id} filled: {execution.side} {execution.shares:g} "  # type: ignore[attr-defined]
           f"{order.inst.local_symbol} at {execution.price:g}, commission {execution.commission:g}")
    if owner is not None:
        api = owner.api
        api.send(messages.exec_details(api.version, -1, execution))
        api.send(messages.open_order(api.version, order))
        api.send(messages.order_status(api.version, order))
        api.send(messages.commission_report(execution))
    for session in list(clients.values()):
        api = session.api
        pos = api.paper.account(order.account).positions.get(order.inst.con_id)
        if api.positions_wanted and pos is not None:
            api.send(messages.position(order.account, order.inst, pos.quantity, pos.avg_cost))
        if api.account_updates == order.account:
            api.push_account(order.account)
        api.push_pnl()


def _ensure_checker(gw: object) -> None:
    key = id(gw)
    task = _CHECKERS.get(key)
    if task is None or task.done():
        _CHECKERS[key] = asyncio.ensure_future(_check_resting(gw))


async def _check_resting(gw: object) -> None:
    book: paper.Paper = gw.paper  # type: ignore[attr-defined]
    try:
        while book.resting():
            await asyncio.sleep(CHECK_INTERVAL)
            for order in book.resting():
                fill = book.fill_price(order)
                if fill is not None:
                    report_fill(gw, order, book.execute(order, fill))
    finally:
        _CHECKERS.pop(id(gw), None)


def _cancel_order(api: Api, r: Reader) -> None:
    if api.version < V_CME_TAGGING:  # IB's client drops the version field from 192
        r.integer("version")
    order_id = r.integer("orderId")
    order = api.paper.orders.get(order_id)
    if order is None:
        api.error(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
        return
    if order.done:
        api.error(order_id, 10148, f"OrderId {order_id} that needs to be cancelled cannot be "
                  f"cancelled, state: {order.status}.")
        return
    _cancelled(api, order)


def _cancelled(api: Api, order: paper.Order) -> None:
    order.status = "Cancelled"
    api.gw.sim(f"paper order {order.order_id} cancelled")
    api.error(order.order_id, 202, "Order Canceled - reason:")
    api.send(messages.order_status(api.version, order))


def _global_cancel(api: Api, r: Reader) -> None:
    for order in api.paper.resting():
        _cancelled(api, order)


def _auto_open_orders(api: Api, r: Reader) -> None:
    r.integer("version")
    if api.session.client_id != 0:
        api.error(-1, 321, "Error validating request.-'bC' : cause - Auto bind only possible "
                  "for client id 0.")


HANDLERS: dict[str, Handler] = {
    "1": _market_data, "2": _cancel_market_data, "3": _place_order, "4": _cancel_order,
    "5": _open_orders, "6": _account_updates, "7": _executions, "8": _ids,
    "9": _contract_details, "10": _market_depth, "11": _cancel_market_depth,
    "12": _nothing, "13": _nothing, "14": _nothing, "15": _auto_open_orders,
    "16": _open_orders, "17": _managed_accounts, "18": _fa, "19": _replace_fa,
    "20": _historical_data, "21": _exercise, "22": _scanner_subscription, "23": _nothing,
    "24": _scanner_parameters, "25": _cancel_historical, "49": _current_time,
    "50": _real_time_bars, "51": _cancel_stream, "54": _option_calculation,
    "55": _option_calculation, "56": _nothing, "57": _nothing, "58": _global_cancel,
    "59": _market_data_type, "61": _positions, "62": _account_summary, "63": _nothing,
    "64": _cancel_positions, "65": _verify, "66": _verify, "67": _display_groups,
    "68": _display_group_events, "69": _update_display_group, "70": _nothing, "71": _nothing,
    "72": _verify_and_auth, "73": _verify_and_auth, "74": _positions_multi, "75": _nothing,
    "76": _account_updates_multi, "77": _nothing, "78": _security_option_params,
    "79": _soft_dollar_tiers, "80": _family_codes, "81": _matching_symbols,
    "82": _depth_exchanges, "83": _smart_components, "84": _news_article,
    "85": _news_providers, "86": _historical_news, "87": _head_timestamp, "88": _histogram,
    "89": _nothing, "90": _nothing, "91": _market_rule, "92": _pnl, "93": _cancel_pnl,
    "94": _pnl_single, "95": _cancel_pnl, "96": _historical_ticks, "97": _tick_by_tick,
    "98": _cancel_tick_by_tick, "99": _completed_orders, "100": _wsh, "101": _nothing,
    "102": _wsh, "103": _nothing, "104": _user_info,
}
# Requests that need IB's servers: while the Gateway has lost them, these go unanswered.
NEEDS_IB = frozenset(HANDLERS) - {"8", "17", "71"}


def needs_ib(message_id: str) -> bool:
    return message_id in NEEDS_IB


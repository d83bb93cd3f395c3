"""Replies as the Gateway writes them, field by field, for the negotiated server version.

Each encoder follows the order in which IB's own ``ibapi`` decoder (10.51) and ib_async's read
the message, with the same server-version thresholds, so a client of any version in range reads
every field where it expects it. Only text framing (server versions below 194) is written.
"""

from __future__ import annotations

import time

from . import universe
from .fields import UNSET_DOUBLE, UNSET_INT, num, qty
from .paper import Execution, Order
from .protocol import encode
from .universe import Instrument

# The server versions (IB's MIN_SERVER_VER_*) at which these layouts change.
V_MODELS = 103
V_FA_PROFILE_GONE = 177
V_PENDING_PRICE_REVISION = 178
V_LAST_TRADE_DATE = 182
V_CUSTOMER_ACCOUNT = 183
V_PROFESSIONAL_CUSTOMER = 184
V_BOND_ACCRUED_INTEREST = 185
V_INELIGIBILITY_REASONS = 186
V_INCLUDE_OVERNIGHT = 189
V_CME_TAGGING = 193
V_ORDER_CONTAINER = 145
V_SIZE_RULES = 164
V_BOND_ISSUERID = 176
V_MARKET_CAP_PRICE = 131
V_LAST_LIQUIDITY = 136
V_SERVICE_DATA_TYPE = 120
EMPTY = ""


def contract_fields(inst: Instrument, exchange: str | None = None) -> list[object]:
    """conId … tradingClass as openOrder, execDetails and portfolio messages carry them."""
    return [inst.con_id, inst.symbol, inst.sec_type, inst.expiry, 0.0, "", inst.multiplier,
            exchange or inst.exchange, inst.currency, inst.local_symbol,
            inst.trading_class]


def contract_details(version: int, req_id: int, inst: Instrument, exchange: str,
                     now: float | None = None) -> bytes:
    """Message 10 (contractData) for one instrument."""
    current = time.time() if now is None else now
    fields: list[object] = [10]
    if version < V_SIZE_RULES:
        fields.append(8)
    expiry = inst.expiry
    if inst.sec_type == "FUT" and version < V_LAST_TRADE_DATE:
        expiry = f"{inst.expiry} 08:30 US/Central"
    fields += [req_id, inst.symbol, inst.sec_type, expiry]
    if version >= V_LAST_TRADE_DATE:
        fields.append(inst.expiry)
    fields += [0, "", exchange, inst.currency, inst.local_symbol,
               inst.local_symbol if inst.sec_type == "CASH" else inst.trading_class,
               inst.trading_class, inst.con_id, num(inst.min_tick)]
    if 110 <= version < V_SIZE_RULES:
        fields.append(1)  # mdSizeMultiplier
    fields += [inst.multiplier, inst.order_types, inst.valid_exchanges, 1, 0, inst.long_name,
               inst.primary, inst.expiry[:6], inst.industry, inst.category, inst.subcategory,
               inst.zone_id, universe.trading_hours(inst, False, current),
               universe.trading_hours(inst, True, current), "", ""]
    if inst.isin:
        fields += [1, "ISIN", inst.isin]
    else:
        fields.append(0)
    market_rules = ",".join([inst.market_rule] * len(inst.valid_exchanges.split(",")))
    fields += [1, inst.symbol if inst.sec_type == "FUT" else "",
               "IND" if inst.sec_type == "FUT" else "", market_rules, inst.expiry,
               inst.stock_type]
    if 163 <= version < V_SIZE_RULES:
        fields.append("0.0001")
    if version >= V_SIZE_RULES:
        step = "1" if inst.sec_type == "FUT" else ("1" if inst.sec_type == "CASH" else "0.0001")
        suggested = "100" if inst.sec_type == "STK" else step
        fields += [step, step, suggested]
    if version >= V_INELIGIBILITY_REASONS:
        fields.append(0)
    return encode(*fields)


def contract_details_end(req_id: int) -> bytes:
    return encode(52, 1, req_id)


def order_status(version: int, o: Order) -> bytes:
    """Message 3 (orderStatus)."""
    fields: list[object] = [3]
    if version < V_MARKET_CAP_PRICE:
        fields.append(6)
    fields += [o.order_id, o.status, qty(o.filled), qty(o.quantity - o.filled),
               num(o.avg_fill), o.perm_id, o.parent_id, num(o.last_fill),
               o.client_id, ""]
    if version >= V_MARKET_CAP_PRICE:
        fields.append(0)
    return encode(*fields)


def _price(value: float) -> str:
    return "" if value == UNSET_DOUBLE else num(value)


def open_order(version: int, o: Order, what_if: dict[str, str] | None = None) -> bytes:
    """Message 5 (openOrder) for a plain order: no combo legs, algo, conditions or scale."""
    inst = o.inst
    f: list[object] = [5]
    if version < V_ORDER_CONTAINER:
        f.append(34)
    f += [o.order_id, *contract_fields(inst, o.exchange),
          o.action, qty(o.quantity), o.order_type, _price(o.limit), _price(o.aux),
          o.tif, "", o.account, "O", 0, o.order_ref, o.client_id, o.perm_id,
          int(o.outside_rth), 0, 0, "", "", "", "", ""]
    if version < V_FA_PROFILE_GONE:
        f.append("")
    if version >= V_MODELS:
        f.append("")
    f += [
        "", "", "", "",  # goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        0, "", "", "",  # auctionStrategy, startingPrice, stockRefPrice, delta
        "", "", "",  # stockRangeLower, stockRangeUpper, displaySize
        0, 0, 0, "", 3,  # blockOrder, sweepToFill, allOrNone, minQty, ocaType
        0, 0, "",  # eTradeOnly, firmQuoteOnly, nbboPriceCap
        o.parent_id, 0,  # parentId, triggerMethod
        "", 0, "", "",  # volatility, volatilityType, deltaNeutralOrderType, ...AuxPrice
        0, 0,  # continuousUpdate, referencePriceType
        "", "", "", "",  # trailStopPrice, trailingPercent, basisPoints, basisPointsType
        "", 0, 0,  # comboLegsDescrip, comboLegs, orderComboLegs
        0,  # smartComboRoutingParams
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        0, "", "", 0,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
        0,  # deltaNeutralContract present
        "",  # algoStrategy
    ]
    f.append(0)  # solicited
    w = what_if or {}
    f += [1 if what_if else 0, o.status,
          w.get("initMarginBefore", ""),
          w.get("maintMarginBefore", ""), w.get("equityWithLoanBefore", ""),
          w.get("initMarginChange", ""), w.get("maintMarginChange", ""),
          w.get("equityWithLoanChange", ""), w.get("initMarginAfter", ""),
          w.get("maintMarginAfter", ""), w.get("equityWithLoanAfter", ""),
          w.get("commission", ""), w.get("minCommission", ""), w.get("maxCommission", ""),
          w.get("commissionCurrency", ""), ""]
    f += [0, 0]  # randomizeSize, randomizePrice
    f += [0]  # conditions
    f += ["", "", "", "", "", "", "", 0]  # adjusted order params
    f += ["", "", ""]  # soft dollar tier
    f += [""]  # cashQty
    f += [0, 0, 0, ""]  # dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpToLimit, priceMgmt
    f += [UNSET_INT, UNSET_INT, 0]  # duration, postToAts, autoCancelParent
    f += [UNSET_INT, UNSET_INT, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE]
    if version >= V_CUSTOMER_ACCOUNT:
        f.append("")
    if version >= V_PROFESSIONAL_CUSTOMER:
        f.append(0)
    if version >= V_BOND_ACCRUED_INTEREST:
        f.append("")
    if version >= V_INCLUDE_OVERNIGHT:
        f.append(0)
    if version >= V_CME_TAGGING:
        f += ["", UNSET_INT]
    return encode(*f)


def open_order_end() -> bytes:
    return encode(53, 1)


def exec_details(version: int, req_id: int, e: Execution) -> bytes:
    """Message 11 (execDetails)."""
    inst = e.inst
    f: list[object] = [11]
    if version < V_LAST_LIQUIDITY:
        f.append(10)
    f += [req_id, e.order_id, *contract_fields(inst, e.exchange),
          e.exec_id, e.time_text, e.account, e.exchange, e.side, qty(e.shares),
          num(e.price), e.perm_id, e.client_id, 0, qty(e.cum_qty), num(e.avg_price),
          e.order_ref, "", ""]
    if version >= V_MODELS:
        f.append("")
    if version >= V_LAST_LIQUIDITY:
        f.append(2)  # removed liquidity, as a marketable order does
    if version >= V_PENDING_PRICE_REVISION:
        f.append(0)
    return encode(*f)


def exec_details_end(req_id: int) -> bytes:
    return encode(55, 1, req_id)


def commission_report(e: Execution) -> bytes:
    """Message 59: commission, and the realized P&L (the clients' "no value" when opening)."""
    realized = e.realized
    return encode(59, 1, e.exec_id, num(e.commission), "USD",
                  num(UNSET_DOUBLE if realized is None else realized), num(UNSET_DOUBLE), "")


def position(account: str, inst: Instrument, amount: float, avg_cost: float) -> bytes:
    """Message 61 (position): exactly 16 fields, as both clients unpack it."""
    return encode(61, 3, account, inst.con_id, inst.symbol, inst.sec_type, inst.expiry, 0.0, "",
                  inst.multiplier, "", inst.currency, inst.local_symbol, inst.trading_class,
                  qty(amount), num(avg_cost))


def portfolio(account: str, inst: Instrument, amount: float, market_price: float,
              avg_cost: float, realized: float) -> bytes:
    """Message 7 (updatePortfolio), version 8."""
    value = round(amount * market_price * inst.factor, 2)
    unrealized = round(value - amount * avg_cost, 2)
    return encode(7, 8, inst.con_id, inst.symbol, inst.sec_type, inst.expiry, 0.0, "",
                  inst.multiplier, inst.primary or inst.exchange, inst.currency,
                  inst.local_symbol, inst.trading_class, qty(amount), num(market_price),
                  num(value), num(avg_cost), num(unrealized), num(round(realized, 2)), account)


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0.0,
               mask: int = 0) -> bytes:
    return encode(1, 6, req_id, tick_type, num(price), qty(size), mask)


def tick_size(req_id: int, tick_type: int, size: float) -> bytes:
    return encode(2, 6, req_id, tick_type, qty(size))


def tick_string(req_id: int, tick_type: int, value: str) -> bytes:
    return encode(46, 6, req_id, tick_type, value)


def tick_generic(req_id: int, tick_type: int, value: float) -> bytes:
    return encode(45, 6, req_id, tick_type, num(value))


def symbol_samples(version: int, req_id: int, found: list[Instrument]) -> bytes:
    fields: list[object] = [79, req_id, len(found)]
    for inst in found:
        derived = ["OPT", "WAR", "IOPT", "CFD", "BAG"] if inst.sec_type == "STK" else []
        fields += [inst.con_id, inst.symbol, inst.sec_type, inst.primary or inst.exchange,
                   inst.currency, len(derived), *derived]
        if version >= V_BOND_ISSUERID:
            fields += [inst.long_name, ""]
    return encode(*fields)


def depth_exchanges(version: int) -> bytes:
    rows = [("ISLAND", "STK", "NASDAQ", "Deep2", 1), ("ARCA", "STK", "ARCA", "Deep", 1),
            ("NYSE", "STK", "NYSE", "Deep", 1), ("IDEALPRO", "CASH", "", "Deep", 4),
            ("CME", "FUT", "", "Deep", 2)]
    fields: list[object] = [80, len(rows)]
    for exchange, sec_type, listing, service, group in rows:
        fields += [exchange, sec_type]
        fields += [listing, service, group] if version >= V_SERVICE_DATA_TYPE else [0]
    return encode(*fields)


EMPTY_SCANNER_XML = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ScanParameterResponse>"
                     "<InstrumentList><Instrument><name>US Stocks</name><type>STK</type>"
                     "</Instrument></InstrumentList><LocationTree><Location>"
                     "<displayName>US Stocks</displayName><locationCode>STK.US</locationCode>"
                     "<instruments>STK</instruments></Location></LocationTree><ScanTypeList>"
                     "<ScanType><displayName>Top % Gainers</displayName><scanCode>"
                     "TOP_PERC_GAIN</scanCode><instruments>STK</instruments></ScanType>"
                     "<ScanType><displayName>Most Active</displayName><scanCode>MOST_ACTIVE"
                     "</scanCode><instruments>STK</instruments></ScanType></ScanTypeList>"
                     "</ScanParameterResponse>")

"""The simulated market: a few instruments, their contract details and deterministic prices.

Three stocks (AAPL and MSFT, which the simulated account holds, and IBM), an ETF (SPY), the next
two quarterly E-mini S&P 500 futures and EUR.USD. A price is a pure function of the instrument
and the time (a few slow waves plus a minute-by-minute wiggle), so the same request gives the
same bars in every run and on every machine, and orders fill at the price the bars show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from zoneinfo import ZoneInfo

from .fields import ContractSpec

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
UTC = dt.UTC


@dataclasses.dataclass(frozen=True)
class Instrument:
    """One tradable contract and what ``reqContractDetails`` says about it."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str  # the default routing exchange: SMART, CME, IDEALPRO
    primary: str
    currency: str
    local_symbol: str
    trading_class: str
    long_name: str
    base_price: float
    min_tick: float
    head: str  # first data point, UTC ``yyyymmdd-hh:mm:ss``
    multiplier: str = ""
    expiry: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    isin: str = ""
    valid_exchanges: str = ""
    order_types: str = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,GAT,GTC,GTD,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"  # noqa: E501
    market_rule: str = "26"

    @property
    def zone(self) -> ZoneInfo:
        return CHICAGO if self.sec_type == "FUT" else NEW_YORK

    @property
    def zone_id(self) -> str:
        """The Gateway's name for the exchange's time zone."""
        return "US/Central" if self.sec_type == "FUT" else "US/Eastern"

    @property
    def factor(self) -> float:
        """What one unit is worth per point: the multiplier, or 1."""
        return float(self.multiplier) if self.multiplier else 1.0

    @property
    def spread(self) -> float:
        return self.min_tick * (2 if self.sec_type == "CASH" else 1)


def _stock(con_id: int, symbol: str, primary: str, long_name: str, price: float, head: str,
           industry: str, category: str, isin: str, trading_class: str = "",
           stock_type: str = "COMMON") -> Instrument:
    return Instrument(
        con_id=con_id, symbol=symbol, sec_type="STK", exchange="SMART", primary=primary,
        currency="USD", local_symbol=symbol, trading_class=trading_class or symbol,
        long_name=long_name, base_price=price, min_tick=0.01, head=head, industry=industry,
        category=category, subcategory=category, stock_type=stock_type, isin=isin,
        valid_exchanges="SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,"
                        "EDGEA,BYX,IEX,EDGX,FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,"
                        "TPLUS0,PSX",
    )


STOCKS = (
    _stock(265598, "AAPL", "NASDAQ", "APPLE INC", 190.10, "19801212-14:30:00", "Technology",
           "Computers", "US0378331005", trading_class="NMS"),
    _stock(272093, "MSFT", "NASDAQ", "MICROSOFT CORP", 415.30, "19860313-14:30:00",
           "Technology", "Software", "US5949181045", trading_class="NMS"),
    _stock(8314, "IBM", "NYSE", "INTL BUSINESS MACHINES CORP", 240.50, "19800317-14:30:00",
           "Technology", "Computers", "US4592001014"),
    _stock(756733, "SPY", "ARCA", "SPDR S&P 500 ETF TRUST", 560.20, "19930129-14:30:00",
           "Funds", "Equity Fund", "US78462F1030", stock_type="ETF"),
)
EURUSD = Instrument(
    con_id=12087792, symbol="EUR", sec_type="CASH", exchange="IDEALPRO", primary="",
    currency="USD", local_symbol="EUR.USD", trading_class="EUR.USD",
    long_name="European Monetary Union Euro", base_price=1.0850, min_tick=0.00005,
    head="20050228-22:15:00", valid_exchanges="IDEALPRO", market_rule="239",
    order_types="ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,CASHQTY,DAY,GAT,GTC,GTD,"
                "IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,REL,RELPCTOFS,STP,STPLMT,TRAIL,TRAILLIT,"
                "TRAILLMT,TRAILMIT,WHATIF",
)
FUTURE_MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}


def quarterly_expiries(today: dt.date, count: int = 2) -> list[dt.date]:
    """The next ``count`` third Fridays of March, June, September and December from ``today``."""
    found: list[dt.date] = []
    year, month = today.year, today.month
    while len(found) < count:
        if month in FUTURE_MONTH_CODES:
            first = dt.date(year, month, 1)
            friday = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
            if friday >= today:
                found.append(friday)
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return found


def future(expiry: dt.date) -> Instrument:
    """The E-mini S&P 500 future that expires on ``expiry``; its conId follows from the date."""
    code = f"ES{FUTURE_MONTH_CODES[expiry.month]}{expiry.year % 10}"
    return Instrument(
        con_id=600_000_000 + expiry.year % 100 * 100 + expiry.month, symbol="ES", sec_type="FUT",
        exchange="CME", primary="", currency="USD", local_symbol=code, trading_class="ES",
        long_name="E-mini S&P 500", base_price=5620.0, min_tick=0.25, head="19970909-13:30:00",
        multiplier="50", expiry=expiry.strftime("%Y%m%d"), valid_exchanges="CME",
        market_rule="67",
        order_types="ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,GAT,GTC,GTD,IOC,"
                    "LIT,LMT,LTH,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,STP,STPLMT,TRAIL,TRAILLIT,"
                    "TRAILLMT,TRAILMIT,WHATIF",
    )


def instruments(today: dt.date | None = None) -> list[Instrument]:
    """Every instrument of the simulated market on ``today`` (futures roll with the date)."""
    day = today or dt.datetime.now(NEW_YORK).date()
    return [*STOCKS, *(future(e) for e in quarterly_expiries(day)), EURUSD]


def by_con_id(con_id: int) -> Instrument | None:
    return next((i for i in instruments() if i.con_id == con_id), None)


def _exchange_ok(inst: Instrument, exchange: str) -> bool:
    return not exchange or exchange == inst.exchange or exchange in inst.valid_exchanges.split(",")


def matching(spec: ContractSpec) -> list[Instrument]:
    """The instruments a request's contract describes, as IB's contract search finds them."""
    if spec.con_id:
        return [i for i in instruments() if i.con_id == spec.con_id]
    found = []
    for inst in instruments():
        symbol_ok = (spec.symbol.upper() in (inst.symbol, "") and
                     spec.local_symbol.upper() in (inst.local_symbol.upper(), ""))
        if not symbol_ok or not (spec.symbol or spec.local_symbol):
            continue
        if spec.sec_type and spec.sec_type != inst.sec_type:
            continue
        if spec.currency and spec.currency.upper() != inst.currency:
            continue
        if not _exchange_ok(inst, spec.exchange.upper()):
            continue
        if spec.primary_exchange and spec.primary_exchange.upper() != inst.primary:
            continue
        if spec.expiry and not inst.expiry.startswith(spec.expiry.split(" ")[0]):
            continue
        if spec.multiplier and inst.multiplier and float(spec.multiplier) != inst.factor:
            continue
        if spec.trading_class and spec.trading_class != inst.trading_class:
            continue
        found.append(inst)
    return found


# ------------------------------------------------------------------------- prices
def noise(con_id: int, step: int) -> float:
    """A repeatable pseudo-random number in [-1, 1) for (instrument, step): splitmix64."""
    z = (con_id * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return (z / 2**63) - 1.0


_WAVES = ((0.010, 390.0), (0.018, 2730.0), (0.045, 23_400.0), (0.070, 131_000.0))


def price(inst: Instrument, when: float) -> float:
    """The instrument's traded price at epoch second ``when``, rounded to its tick."""
    minutes = when / 60.0
    phase = (inst.con_id % 997) / 997.0 * 2 * math.pi
    wave = sum(a * math.sin(2 * math.pi * minutes / p + phase * (k + 1))
               for k, (a, p) in enumerate(_WAVES))
    step = math.floor(minutes)
    frac = minutes - step
    wiggle = 0.0015 * ((1 - frac) * noise(inst.con_id, step) + frac * noise(inst.con_id, step + 1))
    return round_tick(inst, inst.base_price * (1.0 + wave + wiggle))


def round_tick(inst: Instrument, value: float) -> float:
    ticks = round(value / inst.min_tick)
    return round(ticks * inst.min_tick, 6)


def quote(inst: Instrument, when: float) -> tuple[float, float, float]:
    """(bid, ask, last) at ``when``: a one-spread market the last trade lies within."""
    last = price(inst, when)
    bid = round(math.floor((last - inst.spread / 2) / inst.min_tick + 1e-6) * inst.min_tick, 6)
    ask = round(bid + inst.spread, 6)
    return bid, ask, last


def size(inst: Instrument, when: float, scale: float = 1.0) -> float:
    """A repeatable trade or quote size at ``when``."""
    base = 1_000_000 if inst.sec_type == "CASH" else (20 if inst.sec_type == "FUT" else 300)
    return float(max(1, round(base * scale * (1.5 + noise(inst.con_id + 7, int(when))))))


# ------------------------------------------------------------------------- sessions
@dataclasses.dataclass(frozen=True)
class Session:
    """One trading day: its date (in the exchange's zone) and its open and close in epoch seconds."""

    day: dt.date
    start: float
    end: float


def _at(day: dt.date, hh: int, mm: int, zone: ZoneInfo) -> float:
    return dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=zone).timestamp()


def session(inst: Instrument, day: dt.date, rth: bool) -> Session | None:
    """The session of ``day`` (None on weekends): regular hours, or the whole trading day."""
    if day.weekday() >= 5:
        return None
    zone = inst.zone
    if inst.sec_type in ("STK",):
        hours = ((9, 30), (16, 0)) if rth else ((4, 0), (20, 0))
        return Session(day, _at(day, *hours[0], zone), _at(day, *hours[1], zone))
    if inst.sec_type == "FUT":
        if rth:
            return Session(day, _at(day, 8, 30, zone), _at(day, 15, 0, zone))
        return Session(day, _at(day - dt.timedelta(days=1), 17, 0, zone), _at(day, 16, 0, zone))
    # CASH: 17:15 New York the evening before to 17:00 New York.
    return Session(day, _at(day - dt.timedelta(days=1), 17, 15, zone), _at(day, 17, 0, zone))


def sessions_before(inst: Instrument, end: float, count: int, rth: bool) -> list[Session]:
    """The last ``count`` sessions that began before ``end``, oldest first."""
    found: list[Session] = []
    day = dt.datetime.fromtimestamp(end, inst.zone).date() + dt.timedelta(days=1)
    for _ in range(count * 2 + 10):
        if len(found) == count:
            break
        current = session(inst, day, rth)
        if current is not None and current.start < end:
            found.append(current)
        day -= dt.timedelta(days=1)
    return found[::-1]


def trading_hours(inst: Instrument, rth: bool, now: float, days: int = 7) -> str:
    """``tradingHours``/``liquidHours`` as the Gateway writes them: a week of sessions."""
    parts = []
    start = dt.datetime.fromtimestamp(now, inst.zone).date()
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        current = session(inst, day, rth)
        if current is None:
            parts.append(f"{day:%Y%m%d}:CLOSED")
            continue
        begin = dt.datetime.fromtimestamp(current.start, inst.zone)
        finish = dt.datetime.fromtimestamp(current.end, inst.zone)
        parts.append(f"{begin:%Y%m%d:%H%M}-{finish:%Y%m%d:%H%M}")
    return ";".join(parts)

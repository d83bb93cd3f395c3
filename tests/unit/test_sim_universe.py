"""The simulated market: deterministic prices, bars inside sessions, IB's validation errors."""

from __future__ import annotations

import datetime as dt

import pytest

from ibkr_ops.sim import history, paper, universe
from ibkr_ops.sim.fields import ContractSpec

# Wednesday 2026-12-02 12:00 New York.
NOON = dt.datetime(2026, 12, 2, 12, 0, tzinfo=universe.NEW_YORK).timestamp()
AAPL = universe.STOCKS[0]


def test_prices_are_a_function_of_instrument_and_time() -> None:
    assert universe.price(AAPL, NOON) == universe.price(AAPL, NOON)
    assert universe.price(AAPL, NOON) != universe.price(universe.STOCKS[1], NOON)
    bid, ask, last = universe.quote(AAPL, NOON)
    assert bid < ask and round(ask - bid, 2) == 0.01 and bid <= last <= ask


def test_one_day_of_hourly_bars_stays_in_regular_hours() -> None:
    bars, _start, _end = history.bars(AAPL, "", "1 D", "1 hour", "TRADES", True, 1, now=NOON)
    assert [b.date for b in bars] == ["20261202 09:30:00 US/Eastern",
                                      "20261202 10:30:00 US/Eastern",
                                      "20261202 11:30:00 US/Eastern"]
    again, _s, _e = history.bars(AAPL, "", "1 D", "1 hour", "TRADES", True, 1, now=NOON)
    assert bars == again
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


def test_daily_bars_skip_the_weekend() -> None:
    bars, _s, _e = history.bars(AAPL, "", "1 W", "1 day", "TRADES", True, 1, now=NOON)
    assert [b.date for b in bars] == ["20261126", "20261127", "20261130", "20261201", "20261202"]


@pytest.mark.parametrize(("args", "code", "text"), [
    (("1 D", "7 mins", "TRADES"), 321, "bar size setting is invalid"),
    (("1 X", "1 hour", "TRADES"), 321, "duration string [1 X] is invalid"),
    (("10 Y", "1 secs", "TRADES"), 162, "Time length exceed max."),
])
def test_refusals_use_the_gateways_codes(args: tuple[str, str, str], code: int,
                                         text: str) -> None:
    with pytest.raises(history.HistoryError) as caught:
        history.bars(AAPL, "", *args, True, 1, now=NOON)
    assert caught.value.code == code and text in caught.value.text


def test_fx_has_no_trades_but_has_midpoints() -> None:
    with pytest.raises(history.HistoryError, match=r"No historical market data for EUR\.USD"):
        history.bars(universe.EURUSD, "", "1 D", "1 hour", "TRADES", False, 1, now=NOON)
    bars, _s, _e = history.bars(universe.EURUSD, "", "1 D", "1 hour", "MIDPOINT", False, 1,
                                now=NOON)
    assert bars and all(1.0 < b.close < 1.2 for b in bars)


def test_contract_search() -> None:
    assert [i.con_id for i in universe.matching(ContractSpec(symbol="aapl", sec_type="STK",
                                                             exchange="SMART"))] == [265598]
    assert universe.matching(ContractSpec(con_id=12087792)) == [universe.EURUSD]
    futures = universe.matching(ContractSpec(symbol="ES", sec_type="FUT", exchange="CME"))
    assert len(futures) == 2 and futures[0].expiry < futures[1].expiry  # ambiguous, as IB's
    assert universe.matching(ContractSpec(symbol="NOPE", sec_type="STK")) == []


def test_quarterly_expiries_are_third_fridays() -> None:
    assert universe.quarterly_expiries(dt.date(2026, 12, 2)) == [dt.date(2026, 12, 18),
                                                                 dt.date(2027, 3, 19)]


@pytest.mark.parametrize(("inst", "quantity", "price", "fee"), [
    (AAPL, 10, 190.0, 1.0), (AAPL, 1000, 190.0, 5.0), (AAPL, 100, 0.5, 0.5),
    (universe.EURUSD, 20_000, 1.08, 2.0),
])
def test_ibkr_pro_fixed_commissions(inst: universe.Instrument, quantity: float, price: float,
                                    fee: float) -> None:
    assert paper.commission(inst, quantity, price) == fee

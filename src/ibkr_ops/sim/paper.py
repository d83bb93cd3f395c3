"""The simulated paper account: cash, positions, orders, fills, commissions and margin.

One ``Paper`` per Gateway process, shared by its API clients as one IBKR account is. Orders fill
against ``universe.quote``: a market order at once at the ask (buy) or bid (sell), a limit order
at once when marketable, else when the price reaches it (``check`` runs every half second while
orders rest). The simulated market executes at any hour; bars follow the trading sessions.
Commissions follow IBKR Pro fixed rates; margin is Reg T-like (25 % maintenance on stock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from . import universe
from .universe import NEW_YORK, Instrument

START_CASH = 250_000.0
# The account's holdings at start: (conId, quantity, average cost).
START_POSITIONS = ((265598, 100.0, 150.25), (272093, 50.0, 310.50))
FUTURE_INIT_MARGIN = 16_500.0
FUTURE_MAINT_MARGIN = 15_000.0
ORDER_TYPES = ("MKT", "LMT", "STP")


@dataclasses.dataclass
class Position:
    quantity: float
    avg_cost: float  # per unit, multiplier and commissions included (IB's avgCost)
    realized: float = 0.0


@dataclasses.dataclass
class Order:
    order_id: int
    client_id: int
    perm_id: int
    account: str
    inst: Instrument
    exchange: str
    action: str
    quantity: float
    order_type: str
    limit: float
    aux: float
    tif: str
    outside_rth: bool
    order_ref: str
    parent_id: int = 0
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill: float = 0.0
    last_fill: float = 0.0

    @property
    def done(self) -> bool:
        return self.status in ("Filled", "Cancelled", "Inactive")

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclasses.dataclass
class Execution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    inst: Instrument
    exchange: str
    side: str  # BOT or SLD
    shares: float
    price: float
    time: float
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    realized: float | None

    @property
    def time_text(self) -> str:
        return dt.datetime.fromtimestamp(self.time, NEW_YORK).strftime("%Y%m%d %H:%M:%S") + \
            " US/Eastern"


@dataclasses.dataclass
class Account:
    name: str
    cash: dict[str, float]
    positions: dict[int, Position]
    realized: float = 0.0


def commission(inst: Instrument, quantity: float, fill_price: float) -> float:
    """IBKR Pro fixed: 0.005 USD a share (1 USD minimum, 1 % maximum), 2.25 USD a future,
    0.2 basis points of an FX trade (2 USD minimum)."""
    if inst.sec_type == "FUT":
        return round(2.25 * abs(quantity), 2)
    if inst.sec_type == "CASH":
        return round(max(2.0, abs(quantity) * fill_price * 0.00002), 2)
    value = abs(quantity) * fill_price
    return round(min(max(1.0, 0.005 * abs(quantity)), value * 0.01), 2)


class Paper:
    """Every account the login manages, its orders and its executions."""

    def __init__(self, accounts: list[str]) -> None:
        self.accounts = {
            name: Account(name, {"USD": START_CASH},
                          {con_id: Position(q, cost) for con_id, q, cost in START_POSITIONS})
            for name in accounts
        }
        self.orders: dict[int, Order] = {}
        self.executions: list[Execution] = []
        self._perm = 1_000_000 + int(time.time()) % 1_000_000 * 100
        self._exec = 0

    # ------------------------------------------------------------------ valuation
    def account(self, name: str) -> Account:
        return self.accounts.get(name) or next(iter(self.accounts.values()))

    def mark(self, inst: Instrument, now: float | None = None) -> float:
        return universe.price(inst, time.time() if now is None else now)

    def holdings(self, name: str, now: float | None = None
                 ) -> list[tuple[Instrument, Position, float]]:
        """(instrument, position, market price) of every open position."""
        found = []
        for con_id, pos in self.account(name).positions.items():
            inst = universe.by_con_id(con_id)
            if inst is not None and pos.quantity:
                found.append((inst, pos, self.mark(inst, now)))
        return found

    def values(self, name: str, now: float | None = None) -> dict[str, float]:
        """The figures every account tag derives from, in the base currency (USD)."""
        acct = self.account(name)
        rate = self.mark(universe.EURUSD, now)
        stock = gross = futures_pnl = unrealized = init = maint = 0.0
        for inst, pos, mark in self.holdings(name, now):
            value = pos.quantity * mark * inst.factor
            unrealized += value - pos.quantity * pos.avg_cost
            if inst.sec_type == "FUT":
                futures_pnl += value - pos.quantity * pos.avg_cost
                init += FUTURE_INIT_MARGIN * abs(pos.quantity)
                maint += FUTURE_MAINT_MARGIN * abs(pos.quantity)
            else:
                stock += value
                gross += abs(value)
                init += abs(value) * 0.30
                maint += abs(value) * 0.25
        fx = {cur: amount * (rate if cur == "EUR" else 1.0) for cur, amount in acct.cash.items()}
        cash = sum(fx.values())
        init += sum(abs(v) * 0.03 for cur, v in fx.items() if cur != "USD")
        maint += sum(abs(v) * 0.025 for cur, v in fx.items() if cur != "USD")
        net = cash + stock + futures_pnl
        return {"cash": cash, "stock": stock, "gross": gross, "futures_pnl": futures_pnl,
                "unrealized": unrealized, "realized": acct.realized, "init": init,
                "maint": maint, "net": net, "rate": rate}

    # ------------------------------------------------------------------ orders
    def next_perm(self) -> int:
        self._perm += 1
        return self._perm

    def what_if(self, order: Order) -> dict[str, str]:
        """The margin and commission figures a what-if order returns (strings, as sent)."""
        before = self.values(order.account)
        fill = self.fill_price(order) or self.mark(order.inst)
        delta_value = order.sign * order.quantity * fill * order.inst.factor
        if order.inst.sec_type == "FUT":
            d_init, d_maint = (FUTURE_INIT_MARGIN * order.quantity,
                               FUTURE_MAINT_MARGIN * order.quantity)
        else:
            d_init, d_maint = abs(delta_value) * 0.30, abs(delta_value) * 0.25
        fee = commission(order.inst, order.quantity, fill)
        equity = before["net"]

        def money(value: float) -> str:
            return f"{value:.2f}"

        return {
            "initMarginBefore": money(before["init"]), "maintMarginBefore": money(before["maint"]),
            "equityWithLoanBefore": money(equity), "initMarginChange": money(d_init),
            "maintMarginChange": money(d_maint), "equityWithLoanChange": money(-fee),
            "initMarginAfter": money(before["init"] + d_init),
            "maintMarginAfter": money(before["maint"] + d_maint),
            "equityWithLoanAfter": money(equity - fee), "commission": f"{fee:g}",
            "minCommission": "1.7976931348623157E308", "maxCommission": "1.7976931348623157E308",
            "commissionCurrency": "USD",
        }

    def fill_price(self, order: Order, now: float | None = None) -> float | None:
        """Where the order fills now, or None while it must wait."""
        bid, ask, last = universe.quote(order.inst, time.time() if now is None else now)
        touch = ask if order.sign > 0 else bid
        if order.order_type == "MKT":
            return touch
        if order.order_type == "LMT":
            if order.sign > 0 and order.limit >= touch:
                return touch
            if order.sign < 0 and order.limit <= touch:
                return touch
            return None
        if order.order_type == "STP":
            triggered = last >= order.aux if order.sign > 0 else last <= order.aux
            return touch if triggered else None
        return None

    def execute(self, order: Order, fill: float, now: float | None = None) -> Execution:
        """Fill the rest of ``order`` at ``fill``: cash, position, realized P&L, commission."""
        moment = time.time() if now is None else now
        acct = self.account(order.account)
        amount = order.quantity - order.filled
        fee = commission(order.inst, amount, fill)
        signed = order.sign * amount
        inst = order.inst
        pos = acct.positions.get(inst.con_id) or Position(0.0, 0.0)
        realized: float | None = None
        unit = fill * inst.factor
        if pos.quantity and (pos.quantity > 0) != (signed > 0):  # reducing or flipping
            closed = min(abs(signed), abs(pos.quantity))
            per_unit = unit - pos.avg_cost if pos.quantity > 0 else pos.avg_cost - unit
            realized = round(closed * per_unit - fee, 2)
            acct.realized += realized
            pos.realized += realized
            remaining = pos.quantity + signed
            if remaining and (remaining > 0) != (pos.quantity > 0):
                pos = Position(remaining, unit, pos.realized)
            else:
                pos.quantity = remaining
        else:
            total = pos.quantity + signed
            cost = pos.quantity * pos.avg_cost + signed * unit + fee * (1 if signed > 0 else -1)
            pos = Position(total, cost / total if total else 0.0, pos.realized)
        acct.positions[inst.con_id] = pos
        if inst.sec_type == "CASH":
            acct.cash[inst.symbol] = acct.cash.get(inst.symbol, 0.0) + signed
            acct.cash["USD"] -= signed * fill + fee
        elif inst.sec_type == "FUT":
            acct.cash["USD"] -= fee
        else:
            acct.cash["USD"] -= signed * fill + fee
        order.filled = order.quantity
        order.avg_fill = fill
        order.last_fill = fill
        order.status = "Filled"
        self._exec += 1
        execution = Execution(
            exec_id=f"{order.perm_id:08x}.{self._exec:08x}.01.01", order_id=order.order_id,
            client_id=order.client_id, perm_id=order.perm_id, account=acct.name, inst=inst,
            exchange=inst.primary if inst.sec_type == "STK" else inst.exchange,
            side="BOT" if order.sign > 0 else "SLD", shares=amount, price=fill, time=moment,
            cum_qty=amount, avg_price=fill, order_ref=order.order_ref, commission=fee,
            realized=realized)
        self.executions.append(execution)
        return execution

    def resting(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.done]

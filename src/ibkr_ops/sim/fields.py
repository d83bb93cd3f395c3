"""Reading a client's request fields and writing the numbers of a reply, as the TWS API does.

A request is its message id followed by NUL-terminated text fields; what follows the id depends
on the message and on the negotiated server version (see IB's ``client.py``). ``Reader`` walks the
fields in order and raises ``Malformed`` (one line, with the field's name) where a Gateway's own
parser would fail: a missing field, or text where a number belongs.
"""

from __future__ import annotations

import dataclasses
import math

UNSET_INT = 2**31 - 1
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_TEXT = "1.7976931348623157E308"  # Java's Double.MAX_VALUE: the clients' "no value"


class Malformed(Exception):
    """A request a Gateway cannot parse (error 320 "Error reading request")."""


class Reader:
    """The fields of one request after its message id."""

    def __init__(self, fields: list[str]) -> None:
        self._fields = fields
        self._at = 1  # fields[0] is the message id

    def remaining(self) -> int:
        return len(self._fields) - self._at

    def text(self, name: str = "field") -> str:
        if self._at >= len(self._fields):
            raise Malformed(f"{name} is missing")
        value = self._fields[self._at]
        self._at += 1
        return value

    def integer(self, name: str = "field", default: int | None = None) -> int:
        raw = self.text(name).strip()
        if raw == "" and default is not None:
            return default
        try:
            return int(raw)
        except ValueError:
            # Java's parser: java.lang.NumberFormatException: For input string: "x"
            raise Malformed(f'{name}: java.lang.NumberFormatException: For input string: '
                            f'"{raw}"') from None

    def number(self, name: str = "field", default: float = 0.0) -> float:
        raw = self.text(name).strip()
        if raw == "":
            return default
        if raw == "Infinite":
            return math.inf
        try:
            return float(raw)
        except ValueError:
            raise Malformed(f'{name}: java.lang.NumberFormatException: For input string: '
                            f'"{raw}"') from None

    def flag(self, name: str = "field") -> bool:
        return self.integer(name, 0) != 0

    def skip(self, count: int) -> None:
        for _ in range(count):
            self.text()


@dataclasses.dataclass
class ContractSpec:
    """The contract fields a request names (any of them may be empty)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


def read_contract(reader: Reader, con_id: bool = True, primary: bool = True,
                  trading_class: bool = True) -> ContractSpec:
    """The 12 contract fields most requests carry (conId … tradingClass), in the clients' order."""
    spec = ContractSpec()
    if con_id:
        spec.con_id = reader.integer("conId", 0)
    spec.symbol = reader.text("symbol")
    spec.sec_type = reader.text("secType").upper()
    spec.expiry = reader.text("lastTradeDateOrContractMonth")
    spec.strike = reader.number("strike")
    spec.right = reader.text("right")
    spec.multiplier = reader.text("multiplier")
    spec.exchange = reader.text("exchange")
    if primary:
        spec.primary_exchange = reader.text("primaryExchange")
    spec.currency = reader.text("currency")
    spec.local_symbol = reader.text("localSymbol")
    if trading_class:
        spec.trading_class = reader.text("tradingClass")
    return spec


def num(value: float) -> str:
    """A price or amount as the Gateway writes it (Java's shortest decimal, no exponent)."""
    if value == UNSET_DOUBLE:
        return UNSET_TEXT
    text = repr(round(value, 8))
    if "e" in text:
        text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0") if text.endswith(".0") else text


def qty(value: float) -> str:
    """A quantity (Decimal in the clients): ``100`` or ``0.5``."""
    return num(value)

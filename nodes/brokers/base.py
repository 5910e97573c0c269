"""The one interface of a broker account, used by the portfolio and trading nodes.

An adapter never decides whether an order should exist: the trading node's outbox does.
An adapter only places an order under the outbox's number (`ref`, which Tradernet keeps
as `user_order_id`), finds it again by that number after a restart, and reports the
account: positions, cash per currency, deposits and dividends where the broker has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class BrokerError(RuntimeError):
    """The broker could not be asked or did not answer in a way that can be trusted."""


@dataclass(frozen=True)
class OrderSpec:
    ref: int
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    currency: str
    limit_price: Decimal | None
    quote: Decimal  # the latest close: paper fills against it


@dataclass(frozen=True)
class BrokerOrder:
    ref: int
    broker_order_id: str
    status: str  # the outbox's statuses: submitted, partially_filled, filled, rejected, cancelled
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    note: str = ""


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: Decimal
    average_price: Decimal
    currency: str


@dataclass(frozen=True)
class CashMove:
    """A deposit, a withdrawal or a dividend, as the broker reports it."""

    kind: str  # "deposit" | "dividend" | "withdrawal"
    amount: Decimal
    currency: str
    at: datetime
    note: str = ""
    symbol: str | None = None


@dataclass(frozen=True)
class Account:
    positions: dict[str, Position] = field(default_factory=dict)
    cash: dict[str, Decimal] = field(default_factory=dict)


class Broker(Protocol):
    name: str

    def place(self, order: OrderSpec) -> BrokerOrder:
        """Send the order; placing a `ref` the broker has already seen returns that order."""
        ...

    def find(self, ref: int) -> BrokerOrder | None:
        """The broker's view of the order `ref`, or None if it never reached the broker."""
        ...

    def quote(self, symbol: str) -> Decimal | None:
        """The broker's latest price, or None where it has none of its own (paper: the
        universe's latest close is the price)."""
        ...

    def cancel(self, ref: int) -> BrokerOrder: ...

    def account(self) -> Account: ...

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]: ...

"""The one interface of a broker account, used by the portfolio and trading nodes.

An adapter never decides whether an order should exist, nor whether it may be sent again:
the trading node's outbox and its state machine (`nodes/trading/lifecycle.py`) do. An
adapter sends an order once under the id the outbox gave it (`broker_ref`, Tradernet's
`user_order_id`), lists the broker's orders as it sees them (`Sighting`), and reports the
account: positions, cash per currency and the money that moved (deposits, withdrawals,
dividends, fees, taxes) with the broker's own ids.

Errors say how much is known, because a wrong guess costs money:
- `Refused`: a definite no in the broker's own words. Nothing was booked; the order is
  `rejected` and never sent again.
- `NoAnswer` (any other `BrokerError` from `place` counts as one): a timeout, a dropped
  connection, a server error, an answer that cannot be read. The broker may have booked
  it; only its order lists can tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

# What a broker's status says about an order, in the trading node's words
# (`nodes.trading.lifecycle.Cause` values); None: a status this code does not know.
Evidence = Literal["accept", "part_fill", "fill", "cancel", "expire", "reject"]


class BrokerError(RuntimeError):
    """The broker could not be asked or did not answer in a way that can be trusted."""


class NoAnswer(BrokerError):
    """No definite answer: the broker may or may not have done what was asked."""


class Refused(BrokerError):
    """A definite refusal, in the broker's words: nothing was done."""


@dataclass(frozen=True)
class OrderSpec:
    broker_ref: int  # the id the broker keeps (Tradernet's user_order_id): never reused
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    currency: str
    limit_price: Decimal | None
    quote: Decimal  # the latest close: paper fills against it


@dataclass(frozen=True)
class Sighting:
    """An order as the broker lists it (or answers it), read strictly: fields the broker did
    not give are None, never guessed."""

    broker_order_id: str
    broker_ref: int | None  # our id as the broker reports it; None where its list lacks it
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    placed_at: datetime | None  # aware (UTC); None where the broker does not say
    status: str  # the broker's own status code or word, for the record
    evidence: Evidence | None  # None: a status this adapter does not know (the order stays open)
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fee: Decimal | None = None  # None: the broker does not report the fee here
    trade_ids: tuple[str, ...] = ()  # its executions' ids, to find their commissions
    note: str = ""


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: Decimal
    average_price: Decimal
    currency: str


CashKind = Literal["deposit", "withdrawal", "dividend", "fee", "tax"]


@dataclass(frozen=True)
class CashMove:
    """Money in or out of the account, as the broker reports it, with the broker's own id so
    that it is counted once. `amount` is signed as it moves the cash: a deposit or dividend
    is positive, a withdrawal, fee or tax negative (a refund of one positive)."""

    kind: CashKind
    amount: Decimal
    currency: str
    at: datetime
    note: str = ""
    symbol: str | None = None
    id: str = ""  # the broker's id of the movement ("" only for the paper account's old rows)


@dataclass(frozen=True)
class Account:
    positions: dict[str, Position] = field(default_factory=dict)
    cash: dict[str, Decimal] = field(default_factory=dict)


class Broker(Protocol):
    name: str
    # how long before it is listed a cash movement may be dated: a read of the movements
    # starts this much before the newest one kept (`nodes/portfolio/store.py`)
    booking_lag: timedelta

    def place(self, order: OrderSpec) -> Sighting:
        """Send the order once. Its sighting on a definite answer (accepted, or at once
        filled or rejected); `Refused` on a definite refusal; `NoAnswer` otherwise."""
        ...

    def orders(self, since: datetime) -> list[Sighting]:
        """The broker's orders placed since `since` (today's list and its history), as it
        lists them now: possibly late, incomplete, or without our ids."""
        ...

    def cancel(self, broker_order_id: str) -> None:
        """Ask the broker to cancel; the outcome shows in `orders`."""
        ...

    def commissions(self, since: datetime) -> dict[str, Decimal]:
        """The commission per execution id the broker has charged since `since` (positive
        amounts), where it reports them; {} where it does not."""
        ...

    def quote(self, symbol: str) -> Decimal | None:
        """The broker's latest price, or None where it has none of its own (paper: the
        universe's latest close is the price)."""
        ...

    def account(self) -> Account: ...

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]: ...

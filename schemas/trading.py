"""Messages of the trading node: orders, their life in the outbox, the halt flag."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from .common import Currency, Id, Message, Money, Quantity, Symbol, UtcDateTime

Side = Literal["buy", "sell"]
Mode = Literal["research", "paper", "live"]
# An order's states (`nodes/trading/lifecycle.py` holds the transition table):
OrderStatus = Literal[
    "new",  # written to the outbox, not sent
    "sending",  # written before the request leaves: from here on it is never sent again by itself
    "unknown",  # sent without a definite answer: the broker may have it; settled only by evidence or an operator
    "accepted",  # the broker has it, nothing filled yet
    "partially_filled",
    "filled",
    "cancelled",  # with or without a part filled
    "expired",  # likewise
    "rejected",  # by the broker, with its text
    "denied",  # by our limits: never sent
    "abandoned",  # an unknown order an operator gave up on
]
FINISHED: frozenset[str] = frozenset({"filled", "cancelled", "expired", "rejected", "denied", "abandoned"})
OPEN: frozenset[str] = frozenset({"sending", "unknown", "accepted", "partially_filled"})
UNSENT: frozenset[str] = frozenset({"new", "denied"})


def counts_in_turnover(status: str, filled: Decimal) -> bool:
    """Whether the day's turnover limit counts an order (its whole `value_base`): from the
    moment it may reach the broker, unless it ended with nothing filled. One rule for the
    trading node's limit and the planner's budget, which must agree to the cent: a plan
    sized to a budget the limit counts otherwise has its last order denied."""
    return status not in UNSENT and not (status in FINISHED and status != "filled" and filled == 0)


class PlaceOrder(Message):
    """An order for the trading node. `client_order_id` is the order's identity: the same
    id sent again (a redelivery, a plan approved twice, a retry) is the same order and never
    a second one; the planner derives it from the plan and the step (`plan-42:3`)."""

    client_order_id: Id
    symbol: Symbol
    side: Side
    quantity: Quantity = Field(description="shares; a whole number of lots")
    currency: Currency = Field(description="the security's trading currency (checked)")
    limit_price: Money | None = Field(default=None, description="none: a market order")
    plan_id: Id | None = None
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _positive(self) -> PlaceOrder:
        if self.quantity <= 0:
            raise ValueError("quantity must be above 0")
        if self.limit_price is not None and self.limit_price <= 0:
            raise ValueError("limit_price must be above 0")
        return self

    def same_order(self, other: PlaceOrder) -> bool:
        """The fields that make an order (not its reason text)."""
        keep = {"client_order_id", "symbol", "side", "quantity", "currency", "limit_price", "plan_id"}
        return self.model_dump(include=keep) == other.model_dump(include=keep)


class OrderRef(Message):
    client_order_id: Id


class OrderStep(Message):
    """One transition of an order: the state it reached, when, why and who said so."""

    status: OrderStatus
    at: UtcDateTime
    note: str = ""
    cause: str = Field(default="", description="the event: send, accept, fill, no_answer, resend, ...")
    by: str = Field(default="", description="who said so: limits, trading, broker, poll, or an operator")


class Order(Message):
    """An order as the outbox knows it, with every step it went through."""

    client_order_id: Id
    ref: int = Field(description="the outbox's row number")
    broker_ref: int | None = Field(
        default=None, description="the id sent to the broker (Tradernet's user_order_id): never reused"
    )
    broker_order_id: str | None = None
    mode: Mode
    symbol: Symbol
    side: Side
    quantity: Quantity
    currency: Currency
    limit_price: Money | None = None
    reference_price: Money = Field(description="the latest quote when it was accepted")
    value_base: Money | None = Field(
        default=None,
        description="its value in the base currency when it was accepted: what the day's turnover limit counts",
    )
    market_day: date | None = Field(default=None, description="the day whose turnover limit it counts in")
    plan_id: Id | None = None
    reason: str = ""
    status: OrderStatus
    filled_quantity: Quantity = Decimal(0)
    average_price: Money | None = None
    fee: Money = Decimal(0)
    fee_estimated: bool = Field(default=False, description="the fee schedule's figure: the broker has not said yet")
    note: str = Field(default="", description="why it was rejected or cancelled, or the last word on it")
    created: UtcDateTime
    updated: UtcDateTime
    steps: list[OrderStep] = Field(default_factory=list)


class ListOrders(Message):
    status: OrderStatus | None = None
    plan_id: Id | None = None
    limit: int = Field(default=50, ge=1, le=500)


class Orders(Message):
    orders: list[Order]


class Halt(Message):
    reason: str = Field(min_length=1, max_length=500)


class Resume(Message):
    reason: str = Field(default="", max_length=500)


class Halted(Message):
    """Retained on `state/trading/halted`: while `halted`, nothing is sent to the broker."""

    halted: bool
    reason: str = ""
    at: UtcDateTime
    mode: Mode


class SettleOrder(Message):
    """An operator's decision on an order left `unknown` after the settle window: `resend`
    (the broker has no trace of it: send it again, under a new broker id) or `abandon`."""

    client_order_id: Id
    action: Literal["resend", "abandon"]
    by: str = Field(min_length=1, max_length=100, description="who decided (kept with the order)")
    reason: str = Field(default="", max_length=500)


class Attention(Message):
    """Retained on `state/trading/attention`: the orders an operator must look at (`unknown`
    past the settle window; a broker status this node does not know). New orders for their
    securities wait until they are settled."""

    orders: list[Order] = Field(default_factory=list)
    blocked_symbols: list[Symbol] = Field(default_factory=list)
    at: UtcDateTime

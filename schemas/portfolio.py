"""Messages of the portfolio node: the account's positions, cash and value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field, model_validator

from .common import Currency, Message, Money, Quantity, Symbol, UtcDateTime
from .trading import Mode


class Holding(Message):
    symbol: Symbol
    quantity: Quantity
    average_price: Money
    currency: Currency
    price: Money | None = Field(default=None, description="the latest close; none: not priced")
    value: Money | None = Field(default=None, description="quantity x price, in `currency`")
    value_base: Money | None = Field(default=None, description="value in the base currency")
    weight: Money | None = Field(default=None, description="share of the total value (0..1)")


class CashBalance(Message):
    currency: Currency
    amount: Money
    amount_base: Money


class Summary(Message):
    """Retained on `state/portfolio/summary`. A holding without a price is listed in
    `unpriced` and left out of the totals, never valued at a guess. The money moved in and
    out (`*_base`) is every movement the broker reported, each counted once by its id, in
    the base currency at the current rates."""

    base: Currency
    mode: Mode
    broker: str
    positions: list[Holding]
    cash: list[CashBalance]
    positions_base: Money
    cash_base: Money
    total_base: Money
    unpriced: list[Symbol] = Field(default_factory=list)
    fx: dict[str, Money] = Field(description="value of one unit of each currency in the base currency")
    fx_source: str
    deposits_base: Money = Field(description="money put into the account so far, net of deposits sent back")
    dividends_base: Money = Field(
        description="dividends, coupons, fund payouts and interest received so far, net of the tax withheld on "
        "them (a tax booked on the same day and in the same currency as a dividend, for the same security where "
        "the broker names one)"
    )
    withdrawals_base: Money = Field(
        default=Decimal(0), description="money taken out of the account so far (positive), net of returned ones"
    )
    fees_base: Money = Field(
        default=Decimal(0), description="fees the broker charged so far (positive), net of refunds and rebates"
    )
    taxes_base: Money = Field(
        default=Decimal(0),
        description="taxes paid so far (positive), net of refunds, other than those withheld "
        "on dividends (which `dividends_base` is net of)",
    )
    at: UtcDateTime


class SyncPortfolio(Message):
    """Read the account from the broker now (also on a schedule and after every order)."""


class Deposit(Message):
    amount: Money
    currency: Currency
    note: str = Field(default="deposit", max_length=200)

    @model_validator(mode="after")
    def _positive(self) -> Deposit:
        if self.amount <= 0:
            raise ValueError("amount must be above 0")
        return self


class DepositResult(Message):
    currency: Currency
    amount: Money
    balance: Money = Field(description="the cash in that currency after the deposit")


class DepositCheck(Message):
    """Credit this month's planned deposit if it is due and not yet made (paper)."""


class DepositPlanState(Message):
    amount: Money
    currency: Currency
    day: int
    month: str = Field(description="YYYY-MM checked")
    credited: bool = Field(description="this month's deposit is in the account")
    note: str = ""


class GetValuations(Message):
    start: date | None = None
    end: date | None = None


class ValuationPoint(Message):
    day: date
    total_base: Money
    positions_base: Money
    cash_base: Money


class NetDeposits(Message):
    """The money put in so far, net of withdrawals, at the end of a day it changed."""

    day: date
    total_base: Money


class Valuations(Message):
    base: Currency
    points: list[ValuationPoint]
    net_deposits: list[NetDeposits] = Field(
        default_factory=list,
        description="each day the net deposits changed, from the broker's dated movements (base currency at "
        "today's rates): with `points`, what time- and money-weighted returns need",
    )

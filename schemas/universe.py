"""Messages of the universe node: securities, price history, syncs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from .common import Currency, Message, Money, Quantity, Symbol, UtcDateTime

Provider = Literal["bundled", "yfinance", "tradernet"]


def _check_range(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise ValueError(f"start {start} is after end {end}")


class Security(Message):
    """A security the system may hold: what Tradernet calls it and how it trades."""

    symbol: Symbol
    name: str = Field(min_length=1, max_length=200)
    currency: Currency
    exchange: str = Field(default="", max_length=40)
    lot_size: Quantity = Field(default=Decimal(1), description="shares per lot; orders are whole lots")
    min_trade: Money = Field(default=Decimal(0), description="smallest order worth its fee, in `currency`")
    active: bool = True

    @model_validator(mode="after")
    def _positive(self) -> Security:
        if self.lot_size <= 0:
            raise ValueError("lot_size must be above 0")
        if self.min_trade < 0:
            raise ValueError("min_trade must not be negative")
        return self


class AddSecurity(Message):
    security: Security


class UpdateSecurity(Message):
    """Change some fields of a security; the fields left out keep their values."""

    symbol: Symbol
    name: str | None = Field(default=None, min_length=1, max_length=200)
    exchange: str | None = Field(default=None, max_length=40)
    lot_size: Quantity | None = None
    min_trade: Money | None = None
    active: bool | None = None


class SymbolRef(Message):
    symbol: Symbol


class Universe(Message):
    """Retained on `state/universe/securities`: every security, active or not."""

    securities: list[Security]
    at: UtcDateTime


class PricePoint(Message):
    day: date
    close: Money


class Quote(Message):
    symbol: Symbol
    day: date
    close: Money
    currency: Currency


class Quotes(Message):
    """Retained on `state/universe/quotes`: the latest close of every active security."""

    quotes: dict[str, Quote]
    at: UtcDateTime


def closes(quotes: Quotes) -> dict[str, Decimal]:
    """Symbol -> latest close."""
    return {s: q.close for s, q in quotes.quotes.items()}


ClockSource = Literal["wall", "data", "replay"]


class MarketClock(Message):
    """Retained on `state/universe/clock`: what day it is in the market, for every node that
    asks (deposits, valuations, the day's turnover). `wall`: today (live providers); `data`:
    the last day of the prices (paper on the bundled data, which ends in the past);
    `replay`: the day a replay moved it to. Prices after `day` are never served."""

    day: date
    source: ClockSource
    at: UtcDateTime


class SetClock(Message):
    """Move a replay's market clock to `day` (refused unless the universe runs a replay clock)."""

    day: date


class SyncPrices(Message):
    """Fetch daily closes from a provider; all active securities when `symbols` is empty."""

    symbols: list[Symbol] = Field(default_factory=list, max_length=500)
    provider: Provider | None = Field(default=None, description="default: the node's configured provider")
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _range(self) -> SyncPrices:
        _check_range(self.start, self.end)
        return self


class SymbolSync(Message):
    symbol: Symbol
    rows: int = Field(description="prices the provider returned")
    changed: int = Field(description="prices added or corrected")
    last_day: date | None = None
    error: str | None = Field(default=None, description="why this symbol's sync failed (nothing of it was written)")


class SyncResult(Message):
    provider: Provider
    results: list[SymbolSync]
    changed: int
    failed: list[Symbol] = Field(default_factory=list, description="symbols whose own sync failed (see `error`)")


class SyncProgress(Message):
    """Published while a sync runs."""

    done: int
    total: int
    symbol: Symbol
    changed: int


class PricesChanged(Message):
    """Published after a sync that changed prices (never when nothing changed), naming the
    symbols whose stored prices changed; and when a replay's market clock moved (`symbols`
    empty, `changed` 0: no stored price changed, the prices served did)."""

    symbols: list[Symbol]
    changed: int
    last_day: date | None
    at: UtcDateTime


class GetHistory(Message):
    symbol: Symbol
    start: date | None = None
    end: date | None = None
    last: int | None = Field(default=None, ge=1, le=100_000, description="only the last this many closes of the range")

    @model_validator(mode="after")
    def _range(self) -> GetHistory:
        _check_range(self.start, self.end)
        return self


class History(Message):
    symbol: Symbol
    currency: Currency
    points: list[PricePoint]

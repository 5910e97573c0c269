"""Where prices come from. One interface; each provider is real code used for real.

`bundled` (the default) reads the real daily closes shipped in `data/prices.csv.gz`
and works offline. (yfinance and Tradernet candles through tradernet-sdk come next.)
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol

from . import bundle


class ProviderError(RuntimeError):
    """The provider could not deliver (network, unknown symbol at the source, bad data)."""


class PriceProvider(Protocol):
    name: str

    def fetch(self, symbol: str, start: date | None, end: date | None) -> list[tuple[date, Decimal]]:
        """Daily closes of `symbol` between `start` and `end` (inclusive), oldest first."""
        ...


class BundledProvider:
    name = "bundled"

    def __init__(self, path: object = None) -> None:
        self.path = bundle.PRICES if path is None else path

    def fetch(self, symbol: str, start: date | None, end: date | None) -> list[tuple[date, Decimal]]:
        try:
            points = bundle.history(symbol, self.path)  # type: ignore[arg-type]
        except KeyError:
            raise ProviderError(f"the bundled data has no prices for {symbol}") from None
        except (OSError, ValueError) as exc:
            raise ProviderError(f"the bundled data cannot be read: {exc}") from exc
        return [(d, c) for d, c in points if (start is None or d >= start) and (end is None or d <= end)]


def provider(name: str) -> PriceProvider:
    if name == "bundled":
        return BundledProvider()
    raise ProviderError(f"unknown provider {name!r}")

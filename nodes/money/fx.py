"""Currency conversion for valuation and limits: one base currency (EUR by default) and
the value of one unit of every other currency in it.

Where the rates come from: the `FX_RATES` setting (`USD=0.9465,GBP=1.2025`: one unit in
the base currency), else the static default below: the ECB euro reference rate of
2024-11-29 (EUR 1 = USD 1.0562), the last day of the bundled prices. Where the universe
quotes a currency pair with the base currency on one side (`EURUSD_T0.ITS`, `pairs.py`),
its latest close replaces the setting (`Rates.quoted`): the rate of the market clock's
day, the rate the account's exchanges trade at, historical in a replay. A currency
without a rate is an error, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .pairs import parse

DEFAULT_BASE = "EUR"
DEFAULT_RATES = {"USD": (Decimal(1) / Decimal("1.0562")).quantize(Decimal("1E-10"))}  # 0.9467903806
DEFAULT_SOURCE = "static: ECB euro reference rate of 2024-11-29 (EUR 1 = USD 1.0562)"


class FxError(ValueError):
    pass


@dataclass(frozen=True)
class Rates:
    base: str = DEFAULT_BASE
    per_unit: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_RATES))
    source: str = DEFAULT_SOURCE

    def rate(self, currency: str) -> Decimal:
        """The value of one unit of `currency` in the base currency."""
        if currency == self.base:
            return Decimal(1)
        try:
            return self.per_unit[currency]
        except KeyError:
            raise FxError(f"no exchange rate for {currency} (set FX_RATES, e.g. {currency}=1.0)") from None

    def to_base(self, amount: Decimal, currency: str) -> Decimal:
        return amount * self.rate(currency)

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal:
        return amount if source == target else amount * self.rate(source) / self.rate(target)

    def quoted(self, quotes: Mapping[str, Decimal]) -> Rates:
        """These rates with every currency a quoted pair prices against the base currency
        taken from the pair's close (`quotes`: symbol -> latest close)."""
        found: dict[str, Decimal] = {}
        for symbol, close in sorted(quotes.items()):
            pair = parse(symbol)
            if pair is not None and close > 0 and (valued := pair.rates(self.base)) is not None:
                currency, inverted = valued
                found[currency] = Decimal(1) / close if inverted else close
        if not found:
            return self
        names = ", ".join(s for s in sorted(quotes) if parse(s) is not None)
        return Rates(self.base, {**self.per_unit, **found}, f"quotes of {names}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Rates:
        base = env.get("BASE_CURRENCY", DEFAULT_BASE)
        text = env.get("FX_RATES", "").strip()
        if not text:
            if base != DEFAULT_BASE:
                raise FxError(f"BASE_CURRENCY={base} needs FX_RATES (the defaults are in EUR)")
            return cls()
        rates: dict[str, Decimal] = {}
        for part in text.split(","):
            code, _, value = part.partition("=")
            code = code.strip().upper()
            try:
                rate = Decimal(value.strip())
            except InvalidOperation:
                raise FxError(f"FX_RATES: {part!r} is not CODE=rate") from None
            if len(code) != 3 or not code.isalpha() or not rate.is_finite() or rate <= 0:
                raise FxError(f"FX_RATES: {part!r} is not CODE=rate with a rate above 0")
            rates[code] = rate
        return cls(base, rates, "FX_RATES setting")

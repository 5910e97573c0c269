"""The broker's fee per order, for paper fills and for the trading node's "worth its fee"
check.

Default: Freedom24's "Smart" tariff for shares, EUR 1.20 + 0.12 % of the order's value
per order (freedom24.com, Tariffs). This machine cannot reach that page to re-check it:
set `TRADING_FEE_RATE`, `TRADING_FEE_FIXED` and `TRADING_FEE_CURRENCY` to your own plan.
The system this project replaces used EUR 2 + 0.2 % (`TRADING_FEE_RATE=0.002
TRADING_FEE_FIXED=2`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from nodes.environment import decimal

from .fx import Rates

CENT = Decimal("0.01")


@dataclass(frozen=True)
class FeeSchedule:
    rate: Decimal = Decimal("0.0012")
    fixed: Decimal = Decimal("1.20")
    fixed_currency: str = "EUR"

    def fee(self, value: Decimal, currency: str, fx: Rates) -> Decimal:
        """The fee of an order worth `value` in `currency`, in that currency, to the cent."""
        fixed = fx.convert(self.fixed, self.fixed_currency, currency)
        return (abs(value) * self.rate + fixed).quantize(CENT, ROUND_HALF_UP)

    def describe(self) -> str:
        return f"{self.fixed_currency} {self.fixed} + {self.rate * 100:g} % per order"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FeeSchedule:
        rate, fixed = decimal(env, "TRADING_FEE_RATE", "0.0012"), decimal(env, "TRADING_FEE_FIXED", "1.20")
        if not 0 <= rate < 1:
            raise ValueError(f"TRADING_FEE_RATE={rate}: must be in [0, 1)")
        if fixed < 0:
            raise ValueError(f"TRADING_FEE_FIXED={fixed}: must not be negative")
        currency = env.get("TRADING_FEE_CURRENCY", "EUR")
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise ValueError(f"TRADING_FEE_CURRENCY={currency!r}: write a currency code such as EUR")
        return cls(rate, fixed, currency)

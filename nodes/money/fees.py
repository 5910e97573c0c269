"""The broker's fee per order, for paper fills and for the trading node's "worth its fee"
check.

Default: Freedom24's "Smart" tariff for shares, EUR 1.20 + 0.12 % of the order's value
per order (freedom24.com, Tariffs). This machine cannot reach that page to re-check it:
set `TRADING_FEE_RATE`, `TRADING_FEE_FIXED` and `TRADING_FEE_CURRENCY` to your own plan.
The system this project replaces used EUR 2 + 0.2 % (`TRADING_FEE_RATE=0.002
TRADING_FEE_FIXED=2`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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
    def from_env(cls, env: Mapping[str, str] | None = None) -> FeeSchedule:
        env = os.environ if env is None else env
        try:
            schedule = cls(Decimal(env.get("TRADING_FEE_RATE", "0.0012")),
                           Decimal(env.get("TRADING_FEE_FIXED", "1.20")), env.get("TRADING_FEE_CURRENCY", "EUR"))
        except InvalidOperation:
            raise ValueError("TRADING_FEE_RATE and TRADING_FEE_FIXED must be decimal numbers") from None
        if not (0 <= schedule.rate < 1) or schedule.fixed < 0:
            raise ValueError("TRADING_FEE_RATE must be in [0, 1) and TRADING_FEE_FIXED not negative")
        return schedule

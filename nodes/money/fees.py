"""The broker's fee per order, for paper fills and for the trading node's "worth its fee"
check.

Default: Freedom24's "Smart" tariff for shares, EUR 1.20 + 0.12 % of the order's value
per order (freedom24.com, Tariffs). This machine cannot reach that page to re-check it:
set `TRADING_FEE_RATE`, `TRADING_FEE_FIXED` and `TRADING_FEE_CURRENCY` to your own plan.
The system this project replaces used EUR 2 + 0.2 % (`TRADING_FEE_RATE=0.002
TRADING_FEE_FIXED=2`).

A currency exchange (an order on a pair of the money market, `pairs.py`) has its own
schedule, `TRADING_FX_FEE_RATE` (default 0.2 % of the value) and `TRADING_FX_FEE_FIXED`
(default 0, in `TRADING_FEE_CURRENCY`); the spread comes on top (a paper fill moves the
price against the trader by `PAPER_SLIPPAGE`, as for shares). Freedom24's tariff for
conversions could not be checked from here either: the default is deliberately not
cheap (0.2 % + 0.1 % spread, about what European brokers charge), set your own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from nodes.environment import decimal

from .fx import Rates
from .pairs import is_pair

CENT = Decimal("0.01")


@dataclass(frozen=True)
class FeeSchedule:
    rate: Decimal = Decimal("0.0012")
    fixed: Decimal = Decimal("1.20")
    fixed_currency: str = "EUR"
    fx_rate: Decimal = Decimal("0.002")
    fx_fixed: Decimal = Decimal(0)

    def fee(self, value: Decimal, currency: str, fx: Rates, symbol: str = "") -> Decimal:
        """The fee of an order on `symbol` worth `value` in `currency`, in that currency,
        to the cent (a currency pair's `symbol`: the exchange schedule)."""
        rate, fixed = (self.fx_rate, self.fx_fixed) if is_pair(symbol) else (self.rate, self.fixed)
        fixed = fx.convert(fixed, self.fixed_currency, currency) if fixed else Decimal(0)
        return (abs(value) * rate + fixed).quantize(CENT, ROUND_HALF_UP)

    def describe(self) -> str:
        exchange = f"; exchanges {self.fixed_currency} {self.fx_fixed} + {self.fx_rate * 100:g} %"
        return f"{self.fixed_currency} {self.fixed} + {self.rate * 100:g} % per order{exchange}"

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
        fx_rate = decimal(env, "TRADING_FX_FEE_RATE", "0.002", least=Decimal(0), below=Decimal(1))
        fx_fixed = decimal(env, "TRADING_FX_FEE_FIXED", "0", least=Decimal(0))
        return cls(rate, fixed, currency, fx_rate, fx_fixed)

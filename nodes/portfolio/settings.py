"""The portfolio node's configuration, read once from its environment.

| variable                    | default     | meaning                                                |
| --------------------------- | ----------- | ------------------------------------------------------ |
| `EDGE_MODE`                 | `paper`     | `research`/`paper`: the paper account; `live`: Tradernet |
|                             |             | (the account's settings: `nodes/brokers/__init__.py`)  |
| `BASE_CURRENCY`, `FX_RATES` | EUR, static | valuation currency and rates (`nodes/money/fx.py`)    |
| `PORTFOLIO_SYNC_S`          | `300`       | seconds between scheduled syncs                        |
| `PORTFOLIO_FIRST_DEPOSIT`   | `10000 EUR` | paper: what a new account starts with (`0`: nothing)   |
| `PORTFOLIO_MONTHLY_DEPOSIT` | `500 EUR`   | the monthly deposit plan (`0`: none)                   |
| `PORTFOLIO_DEPOSIT_DAY`     | `1`         | the day of the month it is due                         |

Deposits default to EUR, as a European investor at Freedom24 makes them: the account keeps
cash per currency, and the plans exchange what the USD shares of the bundled universe need
(`nodes/opportunity/exchanges.py`) through the money market's pair `EURUSD_T0.ITS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from nodes.brokers import AccountSettings
from nodes.environment import real, whole

Amount = tuple[Decimal, str]  # (500, "USD")


@dataclass(frozen=True)
class Settings:
    account: AccountSettings = field(default_factory=AccountSettings)
    sync_s: float = 300.0
    first_deposit: Amount | None = (Decimal(10000), "EUR")
    monthly_deposit: Amount | None = (Decimal(500), "EUR")
    deposit_day: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        sync_s = real(env, "PORTFOLIO_SYNC_S", 300.0, above=0)
        deposit_day = whole(env, "PORTFOLIO_DEPOSIT_DAY", 1, least=1, most=28)  # every month has it
        return cls(
            AccountSettings.from_env(env),
            sync_s,
            amount(env.get("PORTFOLIO_FIRST_DEPOSIT", "10000 EUR"), "PORTFOLIO_FIRST_DEPOSIT"),
            amount(env.get("PORTFOLIO_MONTHLY_DEPOSIT", "500 EUR"), "PORTFOLIO_MONTHLY_DEPOSIT"),
            deposit_day,
        )


def amount(text: str, name: str) -> Amount | None:
    """`"500 USD"` -> (500, "USD"); `"0"` or empty -> None."""
    parts = text.split()
    try:
        if not parts or Decimal(parts[0]) == 0:
            return None
        value, currency = Decimal(parts[0]), parts[1].upper()
    except (InvalidOperation, IndexError):
        raise ValueError(f"{name}={text!r}: write an amount and a currency, e.g. '500 USD'") from None
    if not value.is_finite() or value < 0 or len(currency) != 3 or not currency.isalpha() or len(parts) > 2:
        raise ValueError(f"{name}={text!r}: write an amount and a currency, e.g. '500 USD'")
    return value, currency

"""The trading node's configuration, read once from its environment: the account
(`EDGE_MODE`, the paper account or Tradernet, fees and FX rates:
`nodes/brokers/__init__.py`), the limits (`limits.py`) and:

| variable                | default   | meaning                                                        |
| ----------------------- | --------- | -------------------------------------------------------------- |
| `EDGE_MODE`             | `paper`   | `research` (never sends), `paper`, `live` (Tradernet); the     |
|                         |           | whole system's mode (`edge up --mode`, Ansible's `edge_mode`)  |
| `TRADING_ALLOW_LIVE`    | `no`      | must be `yes` for `live`: the explicit switch                  |
| `TRADING_STALE_ORDER_S` | `3600`    | an order written but never sent, older than this at a restart, |
|                         |           | is cancelled instead of sent (its price is stale)             |
| `TRADING_MARKET_HOURS`  | `always` in paper, `exchange` in live | see `limits.py`                    |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from nodes.brokers import AccountSettings
from nodes.environment import real
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates

from .limits import Limits


@dataclass(frozen=True)
class Settings:
    account: AccountSettings = field(default_factory=AccountSettings)
    limits: Limits = field(default_factory=Limits)
    stale_after: timedelta = timedelta(hours=1)

    @property
    def mode(self) -> str:
        return self.account.mode

    @property
    def fees(self) -> FeeSchedule:
        return self.account.fees

    @property
    def fx(self) -> Rates:
        return self.account.fx

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        account = AccountSettings.from_env(env)
        stale_s = real(env, "TRADING_STALE_ORDER_S", 3600.0, least=0)
        return cls(
            account,
            Limits.from_env(env, market_hours="exchange" if account.mode == "live" else "always"),
            timedelta(seconds=stale_s),
        )

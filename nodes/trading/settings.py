"""The trading node's configuration, read once from its environment: the account
(`EDGE_MODE`, the paper account or Tradernet, fees and FX rates:
`nodes/brokers/__init__.py`), the limits (`limits.py`) and:

| variable                | default   | meaning                                                        |
| ----------------------- | --------- | -------------------------------------------------------------- |
| `EDGE_MODE`             | `paper`   | `research` (never sends), `paper`, `live` (Tradernet); the     |
|                         |           | whole system's mode (`edge up --mode`, Ansible's `edge_mode`)  |
| `TRADING_ALLOW_LIVE`    | `no`      | must be `yes` for `live`: the explicit switch                  |
| `TRADING_STALE_ORDER_S` | `3600`    | an order written but never sent, older than this at a restart, |
|                         |           | is denied instead of sent (its price is stale)                 |
| `TRADING_ANSWER_S`      | `5`       | `trading/order` answers within this with the order's current   |
|                         |           | state (`sending`, ...); the broker's answer follows as events  |
| `TRADING_POLL_S`        | `30`      | open and `unknown` orders are looked up at the broker this     |
|                         |           | often (doubling on errors up to `TRADING_POLL_MAX_S`, `300`)   |
| `TRADING_SETTLE_S`      | `300`     | an `unknown` order not found at the broker after this needs an |
|                         |           | operator (`trading/settle`); its security is blocked till then |
| `TRADING_FEE_DAYS`      | `3`       | how long a fill's fee is looked for at the broker before the   |
|                         |           | fee schedule's estimate stays                                  |
| `TRADING_MARKET_HOURS`  | `always` in paper, `exchange` in live | see `limits.py`                    |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from nodes.brokers import AccountSettings
from nodes.environment import real, whole
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates

from .limits import Limits


@dataclass(frozen=True)
class Settings:
    account: AccountSettings = field(default_factory=AccountSettings)
    limits: Limits = field(default_factory=Limits)
    stale_after: timedelta = timedelta(hours=1)
    answer_s: float = 5.0
    poll_s: float = 30.0
    poll_max_s: float = 300.0
    settle_after: timedelta = timedelta(minutes=5)
    fee_days: int = 3

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
        poll_s = real(env, "TRADING_POLL_S", 30.0, least=0.05)
        return cls(
            account,
            Limits.from_env(env, market_hours="exchange" if account.mode == "live" else "always"),
            timedelta(seconds=stale_s),
            answer_s=real(env, "TRADING_ANSWER_S", 5.0, least=0.05),
            poll_s=poll_s,
            poll_max_s=max(poll_s, real(env, "TRADING_POLL_MAX_S", 300.0, least=0.05)),
            settle_after=timedelta(seconds=real(env, "TRADING_SETTLE_S", 300.0, least=0)),
            fee_days=whole(env, "TRADING_FEE_DAYS", 3, least=0),
        )

"""Broker accounts behind one interface (`base.Broker`), used by the portfolio and trading
nodes: `paper` (a simulated account in SQLite, the default) and `tradernet` (the real
account through tradernet-sdk, only in `live` mode).

| variable             | default                            | meaning                                  |
| -------------------- | ---------------------------------- | ---------------------------------------- |
| `EDGE_MODE`          | `paper`                            | `research`/`paper`: the paper account;   |
|                      |                                    | `live`: Tradernet                        |
| `PAPER_ACCOUNT`      | `<state dir>/paper-account.sqlite` | the paper account (the execution board's |
|                      |                                    | portfolio and trading nodes share it)    |
| `PAPER_SLIPPAGE`     | `0.001`                            | fills pay the quote moved 0.1 % against  |
|                      |                                    | the trader                               |
| `TRADING_ALLOW_LIVE` | `no`                               | `yes`: the explicit switch `live` needs  |
| `TRADERNET_*`        |                                    | key pair and URL (`tradernet_api.py`)    |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from nodes.environment import decimal
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates

from .base import Broker, BrokerError, NoAnswer, Refused
from .tradernet_api import Credentials

__all__ = ["AccountSettings", "Broker", "BrokerError", "LiveRefused", "NoAnswer", "Refused", "open_broker"]

MODES = ("research", "paper", "live")


class LiveRefused(RuntimeError):
    """Live trading was asked for without everything it needs; the message says what."""


@dataclass(frozen=True)
class AccountSettings:
    """Which account a node opens and what it needs, read once from the node's environment:
    the table above, `EDGE_MODE`, the fees (`nodes/money/fees.py`) and FX rates
    (`nodes/money/fx.py`) the paper account charges and converts with."""

    mode: str = "paper"
    paper_account: Path | None = None  # None: <state dir>/paper-account.sqlite
    slippage: Decimal = Decimal("0.001")
    allow_live: bool = False
    tradernet: Credentials | None = None  # None unless both keys are set
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    fx: Rates = field(default_factory=Rates)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AccountSettings:
        mode = env.get("EDGE_MODE", "paper")
        if mode not in MODES:
            raise ValueError(f"EDGE_MODE={mode!r}: use research, paper or live")
        slippage = decimal(env, "PAPER_SLIPPAGE", "0.001", least=Decimal(0), below=Decimal(1))
        allow = env.get("TRADING_ALLOW_LIVE", "")
        if allow not in ("", "yes", "no"):
            raise ValueError(f"TRADING_ALLOW_LIVE={allow!r}: use yes (live trading allowed) or no")
        account = env.get("PAPER_ACCOUNT")
        return cls(
            mode,
            Path(account) if account else None,
            slippage,
            allow == "yes",
            Credentials.from_env(env),
            FeeSchedule.from_env(env),
            Rates.from_env(env),
        )


def open_broker(settings: AccountSettings, state_dir: Path) -> Broker:
    """The account for the mode: the paper account for `research` and `paper`, Tradernet
    for `live` (refused, with the reason, without its switch and its keys)."""
    if settings.mode in ("research", "paper"):
        from .paper import PaperBroker

        return PaperBroker(
            settings.paper_account or state_dir / "paper-account.sqlite", settings.fees, settings.fx, settings.slippage
        )
    if not settings.allow_live:
        raise LiveRefused(
            "live trading needs the explicit switch TRADING_ALLOW_LIVE=yes (real money moves); refusing to start"
        )
    from . import tradernet_api
    from .tradernet import TradernetBroker

    try:
        client = tradernet_api.client(settings.tradernet)  # refuses missing keys
        zone = ZoneInfo(settings.tradernet.zone if settings.tradernet else "Europe/Moscow")
        return TradernetBroker(client, zone)
    except tradernet_api.TradernetError as exc:
        raise LiveRefused(f"live trading: {exc}; refusing to start") from None

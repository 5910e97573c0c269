"""Broker accounts behind one interface (`base.Broker`), used by the portfolio and trading
nodes: `paper` (a simulated account in SQLite, the default) and `tradernet` (the real
account through tradernet-sdk, only in `live` mode).

| variable             | default                            | meaning                                  |
| -------------------- | ---------------------------------- | ---------------------------------------- |
| `PAPER_ACCOUNT`      | `<state dir>/paper-account.sqlite` | the paper account (the execution board's |
|                      |                                    | portfolio and trading nodes share it)    |
| `PAPER_SLIPPAGE`     | `0.001`                            | fills pay the quote moved 0.1 % against  |
|                      |                                    | the trader                               |
| `TRADING_ALLOW_LIVE` |                                    | `yes`: the explicit switch `live` needs  |
| `TRADERNET_*`        |                                    | key pair and URL (`tradernet_api.py`)    |
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates

from .base import Broker, BrokerError

__all__ = ["Broker", "BrokerError", "LiveRefused", "open_broker"]


class LiveRefused(RuntimeError):
    """Live trading was asked for without everything it needs; the message says what."""


def open_broker(mode: str, state_dir: Path, env: Mapping[str, str]) -> Broker:
    """The account for `mode`: the paper account for `research` and `paper`, Tradernet for
    `live` (refused, with the reason, without its switch and its keys)."""
    fees, fx = FeeSchedule.from_env(env), Rates.from_env(env)
    if mode in ("research", "paper"):
        from .paper import PaperBroker

        try:
            slippage = Decimal(env.get("PAPER_SLIPPAGE", "0.001"))
        except InvalidOperation:
            raise ValueError("PAPER_SLIPPAGE must be a decimal number such as 0.001") from None
        return PaperBroker(env.get("PAPER_ACCOUNT") or state_dir / "paper-account.sqlite", fees, fx, slippage)
    if mode == "live":
        if env.get("TRADING_ALLOW_LIVE") != "yes":
            raise LiveRefused("live trading needs the explicit switch TRADING_ALLOW_LIVE=yes (real money moves); "
                              "refusing to start")
        from . import tradernet_api
        from .tradernet import TradernetBroker

        try:
            creds = tradernet_api.Credentials.from_env(dict(env))
        except tradernet_api.TradernetError as exc:
            raise LiveRefused(f"live trading: {exc}; refusing to start") from None
        return TradernetBroker(tradernet_api.client(creds))
    raise ValueError(f"unknown mode {mode!r}")

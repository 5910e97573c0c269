"""What a replay records, step by step: the account after each step's trades, the trades,
the orders the limits refused, the targets and scores the decisions came from. The report
(`report.py`) rebuilds every day's value from it and the prices; nothing in it is a
figure computed by the replay itself, so a report can be made again from a saved ledger.

Money is Decimal in memory and text in the JSON file (never a float on the way)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from nodes.money.fees import FeeSchedule

EXCHANGE_FEES = FeeSchedule()  # the exchange fee of a ledger written before the ledger had it


@dataclass(frozen=True)
class Trade:
    """A filled order (or the filled part of one), in the security's currency. A currency
    exchange is one too, an order on a pair (`EURUSD_T0.ITS`, `nodes.money.pairs`): its
    quantity counts the pair's base currency (EUR), its price, fee and currency are the
    quote's (USD per EUR, USD)."""

    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    price: Decimal
    fee: Decimal
    currency: str


@dataclass(frozen=True)
class Refusal:
    """An order of a plan that the trading node's limits denied (never sent)."""

    symbol: str
    side: str
    quantity: Decimal
    reasons: str


@dataclass(frozen=True)
class Step:
    day: date  # the market's day (a trading day): deposits, then the planning cycle at its close
    deposits: dict[str, Decimal]  # currency -> credited at this step
    positions: dict[str, Decimal]  # symbol -> shares after the step's trades
    cash: dict[str, Decimal]  # currency -> cash after the step's trades
    value_base: Decimal  # holdings and cash after the trades, in the base currency
    trades: list[Trade] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    targets: dict[str, float] = field(default_factory=dict)  # the optimiser's weights at this step
    scores: dict[str, float] = field(default_factory=dict)  # the composite scores at this step
    notes: list[str] = field(default_factory=list)  # the cycle's own words
    seconds: float = 0.0  # wall time of the step
    timings: dict[str, float] = field(default_factory=dict)  # wall time of each phase of the step


@dataclass
class Ledger:
    start: date
    end: date
    base: str
    fee_rate: Decimal
    fee_fixed: Decimal
    fee_currency: str
    slippage: Decimal
    first_deposit: tuple[Decimal, str]
    monthly_deposit: tuple[Decimal, str]
    settings: dict[str, str]  # the environment the nodes ran with (what was replayed)
    fx_fee_rate: Decimal = EXCHANGE_FEES.fx_rate  # a currency exchange's fee: value x rate + fixed ...
    fx_fee_fixed: Decimal = EXCHANGE_FEES.fx_fixed  # ... (fixed in fee_currency), as the FeeSchedule's
    how: str = "nodes"  # nodes: every node a real process on a real broker
    steps: list[Step] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), default=_text, indent=1))

    @classmethod
    def load(cls, path: Path) -> Ledger:
        doc = json.loads(path.read_text())
        steps = [
            Step(
                day=date.fromisoformat(s["day"]),
                deposits=_decimals(s["deposits"]),
                positions=_decimals(s["positions"]),
                cash=_decimals(s["cash"]),
                value_base=Decimal(s["value_base"]),
                trades=[Trade(**{**x, **_decimals({k: x[k] for k in MONEY})}) for x in s["trades"]],
                refusals=[Refusal(**{**x, "quantity": Decimal(x["quantity"])}) for x in s["refusals"]],
                targets=s["targets"],
                scores=s["scores"],
                notes=s["notes"],
                seconds=s["seconds"],
                timings=s.get("timings", {}),
            )
            for s in doc.pop("steps")
        ]
        return cls(
            start=date.fromisoformat(doc["start"]),
            end=date.fromisoformat(doc["end"]),
            base=doc["base"],
            fee_rate=Decimal(doc["fee_rate"]),
            fee_fixed=Decimal(doc["fee_fixed"]),
            fee_currency=doc["fee_currency"],
            slippage=Decimal(doc["slippage"]),
            first_deposit=(Decimal(doc["first_deposit"][0]), doc["first_deposit"][1]),
            monthly_deposit=(Decimal(doc["monthly_deposit"][0]), doc["monthly_deposit"][1]),
            settings=doc["settings"],
            fx_fee_rate=Decimal(doc.get("fx_fee_rate", EXCHANGE_FEES.fx_rate)),
            fx_fee_fixed=Decimal(doc.get("fx_fee_fixed", EXCHANGE_FEES.fx_fixed)),
            how=doc["how"],
            steps=steps,
        )


MONEY = ("quantity", "price", "fee")


def _decimals(d: dict[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in d.items()}


def _text(x: object) -> str:
    if isinstance(x, Decimal | date):
        return str(x)
    raise TypeError(f"{type(x).__name__} is not JSON")

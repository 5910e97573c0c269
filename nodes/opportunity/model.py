"""Candidate actions: pure, no MQTT. From the portfolio, the target weights, the scores
and the securities, what could be bought or sold, sized in whole lots at the latest close,
each with its fee and its reason. Whether to do it is the generator's and evaluator's job.

For every security that is held or has a target, with V the portfolio's total value and
gap = target x V - held value (in the base currency):

- **buy_underweight** (or **deploy_cash** when more than `deploy_share` of V is idle
  cash): gap above `min_gap` x V, the security active with a score of at least
  `buy_min_score`. Sized to the gap, to half of it, and to what the cash in its currency
  allows, each rounded down to whole lots; a size is dropped when it is under the
  security's minimum trade or its fee is more than `max_fee_share` of its value.
- **trim_overweight**: gap below -`min_gap` x V: sell the excess, in whole lots.
- **exit**: held, and without a target, inactive, or scored under `sell_below_score`:
  sell everything.

A security without a quote, or without a score where a buy needs one, gets a note instead
of a candidate: never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from nodes.environment import decimal, real
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates
from schemas.planning import Action

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Settings:
    """The node's settings, read once from its environment (fees and FX: `nodes/money`).

    | variable                    | default | meaning                                         |
    | --------------------------- | ------- | ----------------------------------------------- |
    | `OPPORTUNITY_BUY_MIN_SCORE` | `50`    | no buy under this score                         |
    | `OPPORTUNITY_SELL_BELOW`    | `30`    | sell everything of a holding scored under this  |
    | `OPPORTUNITY_MIN_GAP`       | `0.01`  | ignore gaps to the target under this share of V |

    `deploy_share` and `max_fee_share` are fixed here (5 % and 1 %).
    """

    buy_min_score: float = 50.0
    sell_below_score: float = 30.0
    min_gap: Decimal = Decimal("0.01")
    deploy_share: Decimal = Decimal("0.05")
    max_fee_share: Decimal = Decimal("0.01")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            buy_min_score=real(env, "OPPORTUNITY_BUY_MIN_SCORE", 50.0),
            sell_below_score=real(env, "OPPORTUNITY_SELL_BELOW", 30.0),
            min_gap=decimal(env, "OPPORTUNITY_MIN_GAP", "0.01", least=Decimal(0), below=Decimal(1)),
        )


@dataclass(frozen=True)
class Holding:
    quantity: Decimal
    currency: str


@dataclass(frozen=True)
class Listing:
    currency: str
    lot_size: Decimal
    min_trade: Decimal
    active: bool


def _lots(amount: Decimal, price: Decimal, lot: Decimal) -> Decimal:
    return (amount / price / lot).to_integral_value(ROUND_DOWN) * lot


def candidates(
    holdings: dict[str, Holding],
    cash: dict[str, Decimal],
    targets: dict[str, Decimal],
    scores: dict[str, float | None],
    listings: dict[str, Listing],
    quotes: dict[str, Decimal],
    fees: FeeSchedule,
    fx: Rates,
    s: Settings = Settings(),
) -> tuple[list[Action], list[str]]:
    """(actions, notes), in a stable order: exits, trims, then buys, each by symbol."""
    notes: list[str] = []
    value = {sym: h.quantity * quotes[sym] * fx.rate(h.currency) for sym, h in holdings.items() if sym in quotes}
    for sym in holdings:
        if sym not in quotes:
            notes.append(f"{sym}: held but has no quote; left out of the total and of every candidate")
    total = sum(value.values(), Decimal(0)) + sum((fx.to_base(a, c) for c, a in cash.items()), Decimal(0))
    if total <= 0:
        return [], ["the portfolio is worth nothing yet: no candidates"]
    idle = sum((fx.to_base(a, c) for c, a in cash.items()), Decimal(0)) / total
    exits: list[Action] = []
    trims: list[Action] = []
    buys: list[Action] = []

    def action(kind: str, sym: str, side: str, qty: Decimal, reason: str) -> Action | None:
        lst, price = listings[sym], quotes[sym]
        amount = qty * price
        fee = fees.fee(amount, lst.currency, fx)
        if qty <= 0:
            return None
        if side == "buy" and (amount < lst.min_trade or fee > amount * s.max_fee_share):
            return None
        return Action(
            kind=kind,  # type: ignore[arg-type]
            symbol=sym,
            side=side,  # type: ignore[arg-type]
            quantity=qty,
            price=price,
            currency=lst.currency,
            value=amount.quantize(CENT),
            fee=fee,
            value_base=fx.to_base(amount, lst.currency).quantize(CENT),
            reason=reason,
        )

    for sym in sorted(set(holdings) | set(targets)):
        if sym not in listings:
            notes.append(f"{sym}: not in the universe")
            continue
        if sym not in quotes:
            if sym not in holdings:
                notes.append(f"{sym}: no quote; no candidate")
            continue
        lst, price = listings[sym], quotes[sym]
        held = holdings.get(sym, Holding(Decimal(0), lst.currency)).quantity
        score = scores.get(sym)
        target = targets.get(sym, Decimal(0))
        now = value.get(sym, Decimal(0)) / total
        gap = target * total - value.get(sym, Decimal(0))  # base currency
        rate = fx.rate(lst.currency)
        if held > 0 and (sym not in targets or not lst.active or (score is not None and score < s.sell_below_score)):
            why = (
                "no target weight"
                if sym not in targets
                else "inactive in the universe"
                if not lst.active
                else f"score {score:.1f} under {s.sell_below_score:g}"
            )
            a = action("exit", sym, "sell", held, f"sell all {held}: {why}")
            if a:
                exits.append(a)
            continue
        if gap < -s.min_gap * total and held > 0:
            qty = min(held, _lots(-gap / rate, price, lst.lot_size))
            a = action(
                "trim_overweight", sym, "sell", qty, f"overweight: {now:.1%} held, target {target:.1%}; sell {qty}"
            )
            if a:
                trims.append(a)
        elif gap > s.min_gap * total:
            if not lst.active:
                continue
            if score is None:
                notes.append(f"{sym}: underweight but not scored; no buy")
                continue
            if score < s.buy_min_score:
                notes.append(f"{sym}: underweight but its score {score:.1f} is under {s.buy_min_score:g}; no buy")
                continue
            kind = "deploy_cash" if idle > s.deploy_share else "buy_underweight"
            full = _lots(gap / rate, price, lst.lot_size)
            fits = _lots(
                max(cash.get(lst.currency, Decimal(0)) * (1 - s.max_fee_share), Decimal(0)), price, lst.lot_size
            )
            sizes = sorted(
                {q for q in (full, _lots(gap / rate / 2, price, lst.lot_size), min(full, fits)) if q > 0}, reverse=True
            )
            for qty in sizes:
                part = "" if qty == full else " (part of the gap)"
                a = action(
                    kind,
                    sym,
                    "buy",
                    qty,
                    f"underweight: {now:.1%} held, target {target:.1%}, score "
                    f"{score:.1f}; buy {qty}{part}"
                    + (f"; {idle:.0%} of the portfolio is idle cash" if kind == "deploy_cash" else ""),
                )
                if a:
                    buys.append(a)
            if not sizes:
                notes.append(f"{sym}: underweight by less than one lot")
    return exits + trims + buys, notes

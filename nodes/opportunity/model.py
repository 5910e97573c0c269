"""Candidate actions: pure, no MQTT. From the portfolio, the target weights, the scores
and the securities, what could be bought or sold, sized in whole lots at the latest close,
each with its fee and its reason. Whether to do it is the generator's and evaluator's job.

Every security is measured against its **aim** (`aims.py`): the optimiser's target, with
the weight of what may not be bought handed to the others and the cash reserve set aside.
With V the portfolio's total value, gap = aim x V - held value (base currency), and the
no-trade band = max(`min_gap`, `band` x aim) x V:

- **buy_underweight**: gap above the band, the security active with a score of at least
  `buy_min_score`; **deploy_cash**: the same with any gap above `min_gap` x V while more
  than `deploy_share` of V beyond the reserve is idle cash. Sized to the gap, to half of
  it, and to what the cash allows (in its currency, and in the others as an exchange would
  bring it: `exchanges.py`), each rounded down to whole lots.
- **trim_overweight**: gap below minus the band: sell back to the band's edge (not to the
  aim: the least turnover that ends the breach), in whole lots.
- **exit**: held, and without a target, inactive, or scored under `sell_below_score`:
  sell everything.

Each order is at most the trading node's `TRADING_MAX_ORDER_VALUE` (the rest of a gap waits
for a later cycle: the limits never refuse a plan's order for its size), and none pays a fee
above `max_fee_share` of its value. A trim or buy that would reverse the security's last
trade within `reversal_days` waits, unless its target or score moved by more than the
thresholds since (exits always go). The band and the guard keep the portfolio from chasing
targets that move a few percent a month: churn costs fees and gains nothing.

A security without a quote, or without a score where a buy needs one, gets a note instead
of a candidate: never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal

from nodes.environment import decimal, real, whole
from nodes.generator.searchspace import PRICE_MARGIN
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates
from nodes.trading.limits import Limits
from schemas.planning import Action

from .aims import aims
from .memory import LastTrade

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Settings:
    """The node's settings, read once from its environment (fees and FX: `nodes/money`;
    the order limits are the trading node's own variables, so the plan knows them).

    | variable                         | default | meaning                                               |
    | -------------------------------- | ------- | ----------------------------------------------------- |
    | `OPPORTUNITY_BUY_MIN_SCORE`      | `50`    | no buy under this score                               |
    | `OPPORTUNITY_SELL_BELOW`         | `30`    | sell everything of a holding scored under this        |
    | `OPPORTUNITY_MIN_GAP`            | `0.01`  | ignore gaps to the aim under this share of V          |
    | `OPPORTUNITY_BAND`               | `0.25`  | no trade while a holding is within this share of its  |
    |                                  |         | aim (25 %: 8 % held for a 10 % aim is left alone)     |
    | `OPPORTUNITY_CASH_RESERVE`       | `0`     | share of V kept in cash on purpose                    |
    | `OPPORTUNITY_DEPLOY_SHARE`       | `0.02`  | idle cash beyond the reserve above this share of V is |
    |                                  |         | invested without the band                             |
    | `OPPORTUNITY_REVERSAL_DAYS`      | `91`    | a trade is not reversed within this many days ...     |
    | `OPPORTUNITY_REVERSAL_TARGET`    | `0.02`  | ... unless its target moved more than this            |
    | `OPPORTUNITY_REVERSAL_SCORE`     | `10`    | ... or its score more than this many points           |
    | `TRADING_MAX_ORDER_VALUE`        | `5000`  | an order is sized at most this (base); the rest waits |
    | `TRADING_MAX_DAILY_TURNOVER`     | `20000` | a cycle's orders trade at most what is left of this   |
    | `TRADING_MAX_FEE_SHARE`          | `0.01`  | no order whose fee is above this share of its value   |
    """

    buy_min_score: float = 50.0
    sell_below_score: float = 30.0
    min_gap: Decimal = Decimal("0.01")
    band: Decimal = Decimal("0.25")
    reserve: Decimal = Decimal(0)
    deploy_share: Decimal = Decimal("0.02")
    reversal_days: int = 91
    reversal_target: Decimal = Decimal("0.02")
    reversal_score: float = 10.0
    max_order: Decimal = Decimal(5000)
    daily_turnover: Decimal = Decimal(20000)
    max_fee_share: Decimal = Decimal("0.01")

    @property
    def largest_order(self) -> Decimal:
        """The most one order may be worth (base): trading's order limit less the price
        margin, since trading values the order again at the quote it has when sent."""
        return self.max_order / (1 + PRICE_MARGIN)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        limits = Limits.from_env(env)
        return cls(
            buy_min_score=real(env, "OPPORTUNITY_BUY_MIN_SCORE", 50.0),
            sell_below_score=real(env, "OPPORTUNITY_SELL_BELOW", 30.0),
            min_gap=decimal(env, "OPPORTUNITY_MIN_GAP", "0.01", least=Decimal(0), below=Decimal(1)),
            band=decimal(env, "OPPORTUNITY_BAND", "0.25", least=Decimal(0), below=Decimal(1)),
            reserve=decimal(env, "OPPORTUNITY_CASH_RESERVE", "0", least=Decimal(0), below=Decimal(1)),
            deploy_share=decimal(env, "OPPORTUNITY_DEPLOY_SHARE", "0.02", least=Decimal(0), below=Decimal(1)),
            reversal_days=whole(env, "OPPORTUNITY_REVERSAL_DAYS", 91, least=0),
            reversal_target=decimal(env, "OPPORTUNITY_REVERSAL_TARGET", "0.02", least=Decimal(0)),
            reversal_score=real(env, "OPPORTUNITY_REVERSAL_SCORE", 10.0, least=0),
            max_order=limits.max_order_value,
            daily_turnover=limits.max_daily_turnover,
            max_fee_share=limits.max_fee_share,
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


@dataclass(frozen=True)
class Outlook:
    """The candidate actions, the notes on what got none, and the weights they aim at."""

    actions: list[Action]
    notes: list[str]
    aims: dict[str, Decimal] = field(default_factory=dict)


def turnover_left(s: Settings, traded: Decimal) -> Decimal:
    """What a plan may still trade today (base currency): the daily limit less what trading
    counts as sent today, less the price margin, because trading values each order again at
    the quote it has when sent, and a plan sized to the limit must not cross it by a move."""
    return (s.daily_turnover - traded) / (1 + PRICE_MARGIN)


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
    *,
    cap: Decimal = Decimal(1),
    last: Mapping[str, LastTrade] | None = None,
    today: date | None = None,
) -> Outlook:
    """Actions in a stable order: exits, trims, then buys, each by symbol. `cap`: the
    optimiser's largest weight; `last`: each security's last trade (`memory.py`), which
    a trim or buy must not reverse within `reversal_days` of `today` unless its reasons
    moved."""
    notes: list[str] = []
    value = {sym: h.quantity * quotes[sym] * fx.rate(h.currency) for sym, h in holdings.items() if sym in quotes}
    for sym in holdings:
        if sym not in quotes:
            notes.append(f"{sym}: held but has no quote; left out of the total and of every candidate")
    total = sum(value.values(), Decimal(0)) + sum((fx.to_base(a, c) for c, a in cash.items()), Decimal(0))
    if total <= 0:
        return Outlook([], ["the portfolio is worth nothing yet: no candidates"])
    idle = sum((fx.to_base(a, c) for c, a in cash.items()), Decimal(0)) / total
    held_w = {sym: v / total for sym, v in value.items()}
    buyable = {
        sym
        for sym in targets
        if sym in listings and listings[sym].active and sym in quotes and (scores.get(sym) or 0) >= s.buy_min_score
    }
    aim = aims(targets, held_w, buyable, cap, s.reserve)
    for sym in sorted(set(targets) - buyable):
        if targets[sym] > held_w.get(sym, Decimal(0)) + s.min_gap:
            score = scores.get(sym)
            why = (
                "not in the universe"
                if sym not in listings
                else "inactive"
                if not listings[sym].active
                else "no quote"
                if sym not in quotes
                else "not scored"
                if score is None
                else f"its score {score:.1f} is under {s.buy_min_score:g}"
            )
            notes.append(
                f"{sym}: target {targets[sym]:.1%} but {why}: no buy; the weight it cannot get goes to the others"
            )
    exits: list[Action] = []
    trims: list[Action] = []
    buys: list[Action] = []

    def spendable(currency: str) -> Decimal:
        """The cash a buy in `currency` may use: its own, and the other currencies' as an
        exchange would bring it (`exchanges.py`: its fee and a fill worse than the quote)."""
        other = sum((fx.convert(a, c, currency) for c, a in cash.items() if c != currency and a > 0), Decimal(0))
        return cash.get(currency, Decimal(0)) + other * (1 - fees.fx_rate - PRICE_MARGIN)

    def action(kind: str, sym: str, side: str, qty: Decimal, reason: str) -> Action | None:
        lst, price = listings[sym], quotes[sym]
        amount = qty * price
        fee = fees.fee(amount, lst.currency, fx)
        if qty <= 0:
            return None
        if (side == "buy" and amount < lst.min_trade) or fee > amount * s.max_fee_share:
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

    def reverses(sym: str, side: str) -> str | None:
        """Why a trade of `side` would undo `sym`'s last trade too soon, or None."""
        was = (last or {}).get(sym)
        if was is None or was.side == side or today is None or (today - was.day).days >= s.reversal_days:
            return None
        moved_target = abs(targets.get(sym, Decimal(0)) - was.target) if was.target is not None else None
        now_score = scores.get(sym)
        moved_score = abs(now_score - was.score) if now_score is not None and was.score is not None else None
        if (moved_target is not None and moved_target > s.reversal_target) or (
            moved_score is not None and moved_score > s.reversal_score
        ):
            return None
        return (
            f"{sym}: a {side} would reverse its {was.side} of {was.day} within {s.reversal_days} days "
            f"(target moved {moved_target or 0:.1%}, score {moved_score or 0:.1f}): it waits"
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
        target = aim.get(sym, Decimal(0))
        now = held_w.get(sym, Decimal(0))
        gap = target * total - value.get(sym, Decimal(0))  # base currency
        rate = fx.rate(lst.currency)
        most = _lots(s.largest_order / rate, price, lst.lot_size)
        band = max(s.min_gap, s.band * target) * total
        if held > 0 and (sym not in targets or not lst.active or (score is not None and score < s.sell_below_score)):
            why = (
                "no target weight"
                if sym not in targets
                else "inactive in the universe"
                if not lst.active
                else f"score {score:.1f} under {s.sell_below_score:g}"
            )
            qty = min(held, most)
            rest = f" (the order limit: {held - qty} in a later cycle)" if qty < held else ""
            a = action("exit", sym, "sell", qty, f"sell all {held}: {why}{rest}")
            if a:
                exits.append(a)
            continue
        if gap < -band and held > 0:
            if why_not := reverses(sym, "sell"):
                notes.append(why_not)
                continue
            # back to the band's edge, not to the aim: the least turnover that ends the breach
            qty = min(held, _lots((-gap - band) / rate, price, lst.lot_size), most)
            why = f"overweight: {now:.1%} held, aim {target:.1%} (band {band / total:.1%}); sell {qty}"
            a = action("trim_overweight", sym, "sell", qty, why)
            if a:
                trims.append(a)
        elif gap > (s.min_gap * total if idle - s.reserve > s.deploy_share else band):
            if not lst.active:
                continue
            if score is None:
                notes.append(f"{sym}: underweight but not scored; no buy")
                continue
            if score < s.buy_min_score:
                notes.append(f"{sym}: underweight but its score {score:.1f} is under {s.buy_min_score:g}; no buy")
                continue
            if why_not := reverses(sym, "buy"):
                notes.append(why_not)
                continue
            kind = "deploy_cash" if idle - s.reserve > s.deploy_share else "buy_underweight"
            full = min(_lots(gap / rate, price, lst.lot_size), most)
            fits = _lots(max(spendable(lst.currency) * (1 - s.max_fee_share), Decimal(0)), price, lst.lot_size)
            sizes = sorted(
                {q for q in (full, min(_lots(gap / rate / 2, price, lst.lot_size), most), min(full, fits)) if q > 0},
                reverse=True,
            )
            for qty in sizes:
                part = "" if qty == full else " (part of the gap)"
                a = action(
                    kind,
                    sym,
                    "buy",
                    qty,
                    f"underweight: {now:.1%} held, aim {target:.1%} (target {targets.get(sym, 0):.1%}), score "
                    f"{score:.1f}; buy {qty}{part}"
                    + (f"; {idle:.0%} of the portfolio is idle cash" if kind == "deploy_cash" else ""),
                )
                if a:
                    buys.append(a)
            if not sizes:
                notes.append(f"{sym}: underweight by less than one lot")
    return Outlook(exits + trims + buys, notes, aim)

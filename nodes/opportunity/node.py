"""The opportunity node's wiring: keeps the latest scores, targets, portfolio and universe
(retained states) and answers `opportunity/candidates` with `model.candidates`, the currency
exchanges their buys need (`exchanges.py`), and the aims, cash reserve and the day's
turnover left that the planner must keep. Rates: the universe's quotes of currency pairs
where it has them (`Rates.quoted`), else the setting. It remembers,
from `evt/trading/order` (`memory.py`), every fill, dated by the market clock, for the
reversal guard, and every order as trading's daily limit counts it, for the day's turnover.

Settings: `OPPORTUNITY_*` (`model.Settings`), fees and FX as the trading node
(`nodes/money/`), the order limits as the trading node (`TRADING_MAX_*`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes import clock as market
from nodes.money.fees import FeeSchedule
from nodes.money.fx import FxError, Rates
from schemas import catalog as t
from schemas.common import utcnow
from schemas.optimization import Targets
from schemas.planning import Candidates, CandidatesRequest
from schemas.portfolio import Summary
from schemas.scoring import Scores
from schemas.trading import Order
from schemas.universe import MarketClock, Universe, closes

from . import model
from .exchanges import exchanges
from .memory import Memory

node = Node("opportunity")


@dataclass
class State:
    settings: model.Settings
    fees: FeeSchedule
    fx: Rates
    memory: Memory
    # mirrors of other nodes' retained states (node.keep); None until each arrives
    summary: Summary | None = None
    targets: Targets | None = None
    scores: Scores | None = None
    universe: Universe | None = None
    quotes: dict[str, Decimal] = field(default_factory=dict)
    clock: MarketClock | None = None


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    env = os.environ
    memory = Memory(ctx.state_dir / "opportunity.sqlite")
    yield State(model.Settings.from_env(env), FeeSchedule.from_env(env), Rates.from_env(env), memory)
    memory.close()


node.keep(t.PORTFOLIO_SUMMARY, "summary")
node.keep(t.OPTIMIZATION_TARGETS, "targets")
node.keep(t.SCORES, "scores")
node.keep(t.UNIVERSE_SECURITIES, "universe")
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)
node.keep(t.UNIVERSE_CLOCK, "clock")


@node.on(t.ORDER_UPDATED)
async def on_order(order: Order, ctx: Ctx) -> None:
    """Any word on an order: what the day's turnover limit counts of it now; a fill also
    remembered with the market's day, and the target and score it was made under."""
    st = ctx.state
    told = st.memory.heard(order)
    if order.filled_quantity <= 0:
        return
    target = next((x.weight for x in st.targets.targets if x.symbol == order.symbol), None) if st.targets else None
    score = next((x.score for x in st.scores.scores if x.symbol == order.symbol), None) if st.scores else None
    price = order.average_price or order.reference_price
    try:
        value_base = st.fx.quoted(st.quotes).to_base(order.filled_quantity * price, order.currency)
    except FxError:
        value_base = Decimal(0)  # valued at nothing rather than not remembered: the guard still sees the trade
    day, limit_day = market.today(st.clock), market.limit_day(st.clock)
    st.memory.filled(order.client_order_id, order.symbol, order.side, day, value_base, target, score, limit_day)
    if not told:  # a trading node of an older release: its fills at their prices, as before
        st.memory.counted(order.client_order_id, limit_day, value_base, order.updated)


@node.command(t.OPPORTUNITY_CANDIDATES)
async def candidates(req: CandidatesRequest, ctx: Ctx) -> Candidates:
    st = ctx.state
    summary, targets, scores, universe = st.summary, st.targets, st.scores, st.universe
    if summary is None or targets is None or scores is None or universe is None:
        missing = [
            name
            for name, x in (("summary", summary), ("targets", targets), ("scores", scores), ("universe", universe))
            if x is None
        ]
        raise Rejected(f"not yet known: {', '.join(missing)} (their retained states have not arrived)")
    holdings = {p.symbol: model.Holding(p.quantity, p.currency) for p in summary.positions}
    cash = {c.currency: c.amount for c in summary.cash}
    weights = {x.symbol: x.weight for x in targets.targets}
    scored = {x.symbol: x.score for x in scores.scores}
    listings = {s.symbol: model.Listing(s.currency, s.lot_size, s.min_trade, s.active) for s in universe.securities}
    today = market.today(st.clock)
    fx = st.fx.quoted(st.quotes)
    try:
        found = model.candidates(
            holdings,
            cash,
            weights,
            scored,
            listings,
            st.quotes,
            st.fees,
            fx,
            st.settings,
            cap=targets.max_weight,
            last=st.memory.last_trades(),
            today=today,
        )
        left = model.turnover_left(st.settings, st.memory.traded_on(market.limit_day(st.clock)))
        reserve = st.settings.reserve * summary.total_base
        # at most half the day's turnover left: the buys of the same money count again
        exchanging, why = exchanges(
            found.actions, cash, listings, st.quotes, st.fees, fx, st.settings, reserve, budget_base=left / 2
        )
    except FxError as exc:
        raise Rejected(str(exc)) from None
    return Candidates(
        cycle_id=req.cycle_id,
        actions=found.actions,
        notes=found.notes + why,
        targets=found.aims,
        cash_target=st.settings.reserve,
        budget_base=max(left - sum((a.value_base for a in exchanging), Decimal(0)), Decimal(0)),
        exchanges=exchanging,
        at=utcnow(),
    )

"""The opportunity node's wiring: keeps the latest scores, targets, portfolio and universe
(retained states) and answers `opportunity/candidates` with `model.candidates`.

Settings: `OPPORTUNITY_*` (`model.Settings`), fees and FX as the trading node
(`nodes/money/`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes.money.fees import FeeSchedule
from nodes.money.fx import FxError, Rates
from schemas import catalog as t
from schemas.common import utcnow
from schemas.optimization import Targets
from schemas.planning import Candidates, CandidatesRequest
from schemas.portfolio import Summary
from schemas.scoring import Scores
from schemas.universe import Universe, closes

from . import model

node = Node("opportunity")


@dataclass
class State:
    settings: model.Settings
    fees: FeeSchedule
    fx: Rates
    # mirrors of other nodes' retained states (node.keep); None until each arrives
    summary: Summary | None = None
    targets: Targets | None = None
    scores: Scores | None = None
    universe: Universe | None = None
    quotes: dict[str, Decimal] = field(default_factory=dict)


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    env = os.environ
    yield State(model.Settings.from_env(env), FeeSchedule.from_env(env), Rates.from_env(env))


node.keep(t.PORTFOLIO_SUMMARY, "summary")
node.keep(t.OPTIMIZATION_TARGETS, "targets")
node.keep(t.SCORES, "scores")
node.keep(t.UNIVERSE_SECURITIES, "universe")
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)


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
    try:
        actions, notes = model.candidates(
            holdings, cash, weights, scored, listings, st.quotes, st.fees, st.fx, st.settings
        )
    except FxError as exc:
        raise Rejected(str(exc)) from None
    return Candidates(cycle_id=req.cycle_id, actions=actions, notes=notes, at=utcnow())

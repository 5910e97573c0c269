"""The opportunity node's wiring: keeps the latest scores, targets, portfolio and universe
(retained states) and answers `opportunity/candidates` with `model.candidates`.

| variable                   | default | meaning                                         |
| -------------------------- | ------- | ----------------------------------------------- |
| `OPPORTUNITY_BUY_MIN_SCORE` | `50`   | no buy under this score                          |
| `OPPORTUNITY_SELL_BELOW`    | `30`   | sell everything of a holding scored under this   |
| `OPPORTUNITY_MIN_GAP`       | `0.01` | ignore gaps to the target under this share of V  |
| fees and FX                 |        | as the trading node (`nodes/brokers/`)           |
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes.money.fees import FeeSchedule
from nodes.money.fx import FxError, Rates
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import Candidates, CandidatesRequest
from schemas.portfolio import Summary
from schemas.universe import closes

from . import model

node = Node("opportunity")


@node.lifespan
async def configure(ctx: Context) -> AsyncIterator[None]:
    env = os.environ
    ctx.state.update(summary=None, targets=None, scores=None, universe=None, quotes={},
                     fees=FeeSchedule.from_env(env), fx=Rates.from_env(env),
                     settings=model.Settings(buy_min_score=float(env.get("OPPORTUNITY_BUY_MIN_SCORE", "50")),
                                             sell_below_score=float(env.get("OPPORTUNITY_SELL_BELOW", "30")),
                                             min_gap=Decimal(env.get("OPPORTUNITY_MIN_GAP", "0.01"))))
    yield


node.keep(t.PORTFOLIO_SUMMARY, "summary")
node.keep(t.OPTIMIZATION_TARGETS, "targets")
node.keep(t.SCORES, "scores")
node.keep(t.UNIVERSE_SECURITIES, "universe")
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)


@node.command(t.OPPORTUNITY_CANDIDATES)
async def candidates(req: CandidatesRequest, ctx: Context) -> Candidates:
    st = ctx.state
    missing = [name for name in ("summary", "targets", "scores", "universe") if st[name] is None]
    if missing:
        raise Rejected(f"not yet known: {', '.join(missing)} (their retained states have not arrived)")
    summary: Summary = st["summary"]
    holdings = {p.symbol: model.Holding(p.quantity, p.currency) for p in summary.positions}
    cash = {c.currency: c.amount for c in summary.cash}
    targets = {x.symbol: x.weight for x in st["targets"].targets}
    scores = {x.symbol: x.score for x in st["scores"].scores}
    listings = {s.symbol: model.Listing(s.currency, s.lot_size, s.min_trade, s.active)
                for s in st["universe"].securities}
    try:
        actions, notes = model.candidates(holdings, cash, targets, scores, listings, st["quotes"], st["fees"],
                                          st["fx"], st["settings"])
    except FxError as exc:
        raise Rejected(str(exc)) from None
    return Candidates(cycle_id=req.cycle_id, actions=actions, notes=notes, at=utcnow())

"""The scoring node's wiring. Rescores on the universe's `prices_changed` event and on
command; reads prices from the universe node (`universe/history`). Only this node
imports pandas-ta and empyrical. `SCORING_BENCHMARK` (default `SPY.US`) is the
benchmark for alpha and beta."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pandas as pd

from edge import Context, Node, Rejected
from nodes import history
from schemas import catalog as t
from schemas.common import utcnow
from schemas.scoring import Rescore, Scores, SecurityScore
from schemas.universe import PricesChanged, Universe

from . import model

node = Node("scoring")


@node.lifespan
async def state(ctx: Context) -> AsyncIterator[None]:
    ctx.state["universe"] = None
    ctx.state["benchmark"] = os.environ.get("SCORING_BENCHMARK", "SPY.US")
    yield


@node.on(t.UNIVERSE_SECURITIES)
async def on_universe(universe: Universe, ctx: Context) -> None:
    first = ctx.state["universe"] is None
    ctx.state["universe"] = universe
    if first:  # a late start: score what the universe has
        await rescore(Rescore(), ctx)


@node.on(t.PRICES_CHANGED)
async def on_prices(event: PricesChanged, ctx: Context) -> None:
    await rescore(Rescore(), ctx)


@node.command(t.SCORING_RESCORE)
async def rescore(req: Rescore, ctx: Context) -> Scores:
    symbols = history.chosen(ctx.state["universe"], list(req.symbols))
    benchmark = ctx.state["benchmark"]
    closes = await history.closes(sorted(set(symbols) | {benchmark}), ctx) if symbols else pd.DataFrame()
    if symbols and (benchmark not in closes or closes[benchmark].dropna().empty):
        raise Rejected(f"the benchmark {benchmark} has no prices: sync it first")
    # the handler thread: blocking here delays no keep-alive
    results = model.score_universe(closes[symbols], closes[benchmark]) if symbols else []
    scores = Scores(scores=[SecurityScore(symbol=r.symbol, status=r.status, score=r.score, parts=r.parts,
                                          stats=r.stats, days=r.days) for r in results],
                    as_of=closes.index.max().date() if len(closes.index) else None,
                    benchmark=benchmark, computed_at=utcnow())
    await ctx.publish(t.SCORES, scores)
    return scores

"""The scoring node's wiring. Rescores on the universe's `prices_changed` event and on
command; reads prices from the universe node (`universe/history`). Only this node
imports pandas-ta and empyrical. Configuration: `settings.py`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import pandas as pd

from edge import Context, Node, Rejected
from nodes import clock as market
from nodes import history
from schemas import catalog as t
from schemas.common import utcnow
from schemas.scoring import Rescore, Scores, SecurityScore
from schemas.universe import GetHistory, History, MarketClock, PricesChanged, Universe

from . import model
from .settings import Settings

node = Node("scoring")


@dataclass
class State:
    settings: Settings
    universe: Universe | None = None  # the universe's retained securities
    clock: MarketClock | None = None  # the universe's market clock: every fetch of one run ends on its day
    cache: history.Cache | None = None  # the closes fetched so far (`history.Cache`)


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    yield State(Settings.from_env(os.environ), cache=history.Cache(model.HISTORY_DAYS))


@node.on(t.UNIVERSE_SECURITIES)
async def on_universe(universe: Universe, ctx: Ctx) -> None:
    first = ctx.state.universe is None
    ctx.state.universe = universe
    if first and not market.waits(os.environ, ctx.state.clock):  # a late start: score what the universe has
        await rescore(Rescore(), ctx)


@node.on(t.PRICES_CHANGED)
async def on_prices(event: PricesChanged, ctx: Ctx) -> None:
    if ctx.state.cache is not None:
        ctx.state.cache.forget(event.symbols)  # their stored prices changed: fetched whole again
    if not market.waits(os.environ, ctx.state.clock):
        await rescore(Rescore(), ctx)


node.keep(t.UNIVERSE_CLOCK, "clock")


@node.command(t.SCORING_RESCORE)
async def rescore(req: Rescore, ctx: Ctx) -> Scores:
    try:
        symbols = history.chosen(ctx.state.universe, list(req.symbols))
    except history.NotInUniverse as exc:
        raise Rejected(str(exc)) from None
    if market.waits(os.environ, ctx.state.clock):
        raise Rejected("the replay's market clock has not come yet: no day to score")
    benchmark, end = ctx.state.settings.benchmark, market.last_day(ctx.state.clock)

    async def fetch(symbol: str, start: date | None) -> History:
        req = GetHistory(symbol=symbol, start=start, end=end, last=model.HISTORY_DAYS)
        return await ctx.call(t.UNIVERSE_HISTORY, req, timeout=60)

    wanted = sorted(set(symbols) | {benchmark})
    closes = await history.closes(wanted, fetch, ctx.state.cache, end) if symbols else pd.DataFrame()
    if symbols and (benchmark not in closes or closes[benchmark].dropna().empty):
        raise Rejected(f"the benchmark {benchmark} has no prices: sync it first")
    # the handler thread: blocking here delays no keep-alive
    results = model.score_universe(closes[symbols], closes[benchmark]) if symbols else []
    scores = Scores(
        scores=[
            SecurityScore(symbol=r.symbol, status=r.status, score=r.score, parts=r.parts, stats=r.stats, days=r.days)
            for r in results
        ],
        as_of=closes.index.max().date() if len(closes.index) else None,
        benchmark=benchmark,
        computed_at=utcnow(),
    )
    await ctx.publish(t.SCORES, scores)
    return scores

"""The scoring node's wiring. Rescores on the universe's `prices_changed` event and on
command; reads prices from the universe node (`universe/history`). Only this node's child
process imports pandas, pandas-ta and empyrical (`job.py`, run by `nodes/child.py`): the
node keeps the closes it fetched as plain arrays and stays thin between runs.
Configuration: `settings.py`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

from edge import Context, Node, Rejected
from nodes import clock as market
from nodes import history
from nodes.child import Child, ChildDied
from schemas import catalog as t
from schemas.common import utcnow
from schemas.scoring import Rescore, Scores, SecurityScore
from schemas.universe import GetHistory, History, MarketClock, PricesChanged, Universe

from .settings import HISTORY_DAYS, Settings

node = Node("scoring")


@dataclass
class State:
    settings: Settings
    child: Child  # where the scores are computed
    universe: Universe | None = None  # the universe's retained securities
    clock: MarketClock | None = None  # the universe's market clock: every fetch of one run ends on its day
    cache: history.Cache | None = None  # the closes fetched so far (`history.Cache`)


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    settings = Settings.from_env(os.environ)
    state = State(settings, Child("scoring", settings.idle_exit_s), cache=history.Cache(HISTORY_DAYS))
    await state.child.warm("nodes.scoring.job")  # a run comes at once (the universe's retained securities)
    try:
        yield state
    finally:
        state.child.close()


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
        req = GetHistory(symbol=symbol, start=start, end=end, last=HISTORY_DAYS)
        return await ctx.call(t.UNIVERSE_HISTORY, req, timeout=60)

    results: list[SecurityScore] = []
    as_of: date | None = None
    if symbols:
        closes = await history.fetched(sorted(set(symbols) | {benchmark}), fetch, ctx.state.cache, end)
        if not closes[benchmark].days:
            raise Rejected(f"the benchmark {benchmark} has no prices: sync it first")
        try:
            results, as_of = await ctx.state.child.run(
                "nodes.scoring.job:score", closes, symbols, benchmark, ctx.state.settings.weights
            )
        except ChildDied as exc:
            raise Rejected(f"{exc}; nothing was scored (the next run starts a new process)") from None
    scores = Scores(scores=results, as_of=as_of, benchmark=benchmark, computed_at=utcnow())
    await ctx.publish(t.SCORES, scores)
    return scores

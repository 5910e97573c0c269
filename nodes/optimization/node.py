"""The optimization node's wiring: target weights after every price change and on
command, from the universe's closes (`universe/history`). Only this node's child process
imports pandas, PyPortfolioOpt and cvxpy (`job.py`, run by `nodes/child.py`): the node
keeps the closes it fetched as plain arrays and stays thin between runs. The method is in
`model.py`, its configuration in `settings.py`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date

from edge import Context, Node, Rejected
from nodes import clock as market
from nodes import history
from nodes.child import Child, ChildDied
from schemas import catalog as t
from schemas.optimization import Optimize, Targets
from schemas.universe import GetHistory, History, MarketClock, PricesChanged, Universe

from .settings import Settings

node = Node("optimization")


@dataclass
class State:
    settings: Settings
    child: Child  # where the targets are computed
    universe: Universe | None = None  # the universe's retained securities
    clock: MarketClock | None = None  # the universe's market clock: every fetch of one run ends on its day
    cache: history.Cache | None = None  # the closes fetched so far (`history.Cache`)


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    settings = Settings.from_env(os.environ)
    cache = history.Cache(settings.lookback + 1)  # the window's returns need a close before it
    state = State(settings, Child("optimization", settings.idle_exit_s), cache=cache)
    await state.child.warm("nodes.optimization.job")  # a run comes at once (the universe's retained securities)
    try:
        yield state
    finally:
        state.child.close()


@node.on(t.UNIVERSE_SECURITIES)
async def on_universe(universe: Universe, ctx: Ctx) -> None:
    first = ctx.state.universe is None
    ctx.state.universe = universe
    if first and not market.waits(os.environ, ctx.state.clock):
        with contextlib.suppress(Rejected):  # no prices yet: the first prices_changed event will do it
            await optimize(Optimize(), ctx)


@node.on(t.PRICES_CHANGED)
async def on_prices(event: PricesChanged, ctx: Ctx) -> None:
    if ctx.state.cache is not None:
        ctx.state.cache.forget(event.symbols)  # their stored prices changed: fetched whole again
    if not market.waits(os.environ, ctx.state.clock):
        await optimize(Optimize(), ctx)


node.keep(t.UNIVERSE_CLOCK, "clock")


@node.command(t.OPTIMIZATION_OPTIMIZE)
async def optimize(req: Optimize, ctx: Ctx) -> Targets:
    try:
        symbols = history.chosen(ctx.state.universe, list(req.symbols))
    except history.NotInUniverse as exc:
        raise Rejected(str(exc)) from None
    if not symbols:
        raise Rejected("the universe has no active securities yet")
    if market.waits(os.environ, ctx.state.clock):
        raise Rejected("the replay's market clock has not come yet: no day to optimise for")
    settings, end = ctx.state.settings, market.last_day(ctx.state.clock)
    if req.returns_model is not None:
        settings = replace(settings, returns_model=req.returns_model)
    if req.blend is not None:
        settings = replace(settings, blend=float(req.blend))

    async def fetch(symbol: str, start: date | None) -> History:
        req = GetHistory(symbol=symbol, start=start, end=end, last=settings.lookback + 1)
        return await ctx.call(t.UNIVERSE_HISTORY, req, timeout=60)

    closes = await history.fetched(symbols, fetch, ctx.state.cache, end)
    try:
        targets, inputs = await ctx.state.child.run("nodes.optimization.job:optimize", closes, settings)
    except ValueError as exc:
        raise Rejected(str(exc)) from None
    except ChildDied as exc:
        raise Rejected(f"{exc}; no targets were computed (the next run starts a new process)") from None
    await ctx.publish(t.OPTIMIZATION_TARGETS, targets)
    if inputs is not None:
        await ctx.publish(t.OPTIMIZATION_INPUTS, inputs)
    return targets

"""The optimization node's wiring: target weights after every price change and on
command, from the universe's closes (`universe/history`). Only this node imports
PyPortfolioOpt. The method is in `model.py`, its configuration in `settings.py`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes import clock as market
from nodes import history, matrix
from schemas import catalog as t
from schemas.common import utcnow
from schemas.optimization import Excluded, Inputs, Optimize, Target, Targets
from schemas.universe import GetHistory, History, MarketClock, PricesChanged, Universe

from . import model
from .settings import Settings

node = Node("optimization")


@dataclass
class State:
    settings: Settings
    universe: Universe | None = None  # the universe's retained securities
    clock: MarketClock | None = None  # the universe's market clock: every fetch of one run ends on its day
    cache: history.Cache | None = None  # the closes fetched so far (`history.Cache`)


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    settings = Settings.from_env(os.environ)
    yield State(settings, cache=history.Cache(settings.lookback + 1))  # the window's returns need a close before it


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

    closes = await history.closes(symbols, fetch, ctx.state.cache, end)
    try:
        r = model.optimize(closes, settings)  # the handler thread: no keep-alive waits for it
    except ValueError as exc:
        raise Rejected(str(exc)) from None

    def dec(x: float) -> Decimal:
        return Decimal(repr(float(x))).quantize(model.PLACES)

    targets = Targets(
        targets=[
            Target(symbol=s, weight=w, mean_variance=dec(r.mean_variance.get(s, 0.0)), hrp=dec(r.hrp.get(s, 0.0)))
            for s, w in sorted(r.weights.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        mean_variance_method=r.mean_variance_method,  # type: ignore[arg-type]
        hrp_method=r.hrp_method,  # type: ignore[arg-type]
        fallbacks=r.fallbacks,
        blend=dec(settings.blend),
        returns_model=settings.returns_model,  # type: ignore[arg-type]
        risk_free_rate=dec(settings.risk_free_rate),
        max_weight=dec(r.max_weight),
        expected_return=dec(r.expected_return),
        volatility=dec(r.volatility),
        sharpe=dec(r.sharpe),
        inputs_from=r.inputs_from.date() if r.inputs_from is not None else None,
        inputs_to=r.inputs_to.date() if r.inputs_to is not None else None,
        observations=r.observations,
        excluded=[Excluded(symbol=s, reason=why) for s, why in sorted(r.excluded.items())],
        computed_at=utcnow(),
    )
    await ctx.publish(t.OPTIMIZATION_TARGETS, targets)
    if r.mu is not None and r.cov is not None:
        await ctx.publish(
            t.OPTIMIZATION_INPUTS,
            Inputs(
                symbols=list(r.mu.index),
                mu=[float(x) for x in r.mu],
                cov_b64=matrix.encode(r.cov.to_numpy()),
                inputs_to=targets.inputs_to,
                computed_at=targets.computed_at,
            ),
        )
    return targets

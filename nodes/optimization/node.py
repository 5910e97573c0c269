"""The optimization node's wiring: target weights after every price change and on
command, from the universe's closes (`universe/history`). Only this node imports
PyPortfolioOpt. Configuration (environment); the method is in `model.py`:

| variable            | default | meaning                                              |
| ------------------- | ------- | ---------------------------------------------------- |
| `OPT_RETURNS`       | `mean`  | expected returns: `mean` historical or `ema`          |
| `OPT_BLEND`         | `0.5`   | share of mean-variance in the targets (rest: HRP)     |
| `OPT_MAX_WEIGHT`    | `0.20`  | most of the portfolio one security may be            |
| `OPT_GAMMA`         | `0.1`   | L2 regularisation of mean-variance                   |
| `OPT_RISK_FREE`     | `0.02`  | annual risk-free rate for the Sharpe ratio           |
| `OPT_LOOKBACK_DAYS` | `756`   | trading days of history used (3 years)               |
| `OPT_MIN_DAYS`      | `252`   | fewer closes than this in the window: excluded       |
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes import history, matrix
from schemas import catalog as t
from schemas.common import utcnow
from schemas.optimization import Excluded, Inputs, Optimize, Target, Targets
from schemas.universe import PricesChanged, Universe

from . import model

node = Node("optimization")


def _settings(env: dict[str, str]) -> model.Settings:
    try:
        s = model.Settings(returns_model=env.get("OPT_RETURNS", "mean"), blend=float(env.get("OPT_BLEND", "0.5")),
                           max_weight=float(env.get("OPT_MAX_WEIGHT", "0.20")),
                           gamma=float(env.get("OPT_GAMMA", "0.1")),
                           risk_free_rate=float(env.get("OPT_RISK_FREE", "0.02")),
                           lookback=int(env.get("OPT_LOOKBACK_DAYS", "756")),
                           min_days=int(env.get("OPT_MIN_DAYS", "252")))
    except ValueError as exc:
        raise ValueError(f"optimization settings: {exc}") from None
    if s.returns_model not in ("mean", "ema") or not 0 <= s.blend <= 1 or not 0 < s.max_weight <= 1 \
            or s.gamma < 0 or s.min_days < 2 or s.lookback < s.min_days:
        raise ValueError("optimization settings: OPT_RETURNS mean|ema, OPT_BLEND 0..1, OPT_MAX_WEIGHT (0, 1], "
                         "OPT_GAMMA >= 0, OPT_LOOKBACK_DAYS >= OPT_MIN_DAYS >= 2")
    return s


@node.lifespan
async def configure(ctx: Context) -> AsyncIterator[None]:
    ctx.state["settings"] = _settings(dict(os.environ))
    ctx.state["universe"] = None
    yield


@node.on(t.UNIVERSE_SECURITIES)
async def on_universe(universe: Universe, ctx: Context) -> None:
    first = ctx.state["universe"] is None
    ctx.state["universe"] = universe
    if first:
        with contextlib.suppress(Rejected):  # no prices yet: the first prices_changed event will do it
            await optimize(Optimize(), ctx)


@node.on(t.PRICES_CHANGED)
async def on_prices(event: PricesChanged, ctx: Context) -> None:
    await optimize(Optimize(), ctx)


@node.command(t.OPTIMIZATION_OPTIMIZE)
async def optimize(req: Optimize, ctx: Context) -> Targets:
    symbols = history.chosen(ctx.state["universe"], list(req.symbols))
    if not symbols:
        raise Rejected("the universe has no active securities yet")
    base: model.Settings = ctx.state["settings"]
    updates: dict = {}
    if req.returns_model is not None:
        updates["returns_model"] = req.returns_model
    if req.blend is not None:
        updates["blend"] = float(req.blend)
    settings = model.Settings(**{**base.__dict__, **updates})
    closes = await history.closes(symbols, ctx)
    try:
        r = model.optimize(closes, settings)  # the handler thread: no keep-alive waits for it
    except ValueError as exc:
        raise Rejected(str(exc)) from None

    def dec(x: float) -> Decimal:
        return Decimal(repr(float(x))).quantize(model.PLACES)

    targets = Targets(
        targets=[Target(symbol=s, weight=w, mean_variance=dec(r.mean_variance.get(s, 0.0)), hrp=dec(r.hrp.get(s, 0.0)))
                 for s, w in sorted(r.weights.items(), key=lambda kv: (-kv[1], kv[0]))],
        mean_variance_method=r.mean_variance_method, hrp_method=r.hrp_method, fallbacks=r.fallbacks,  # type: ignore[arg-type]
        blend=dec(settings.blend), returns_model=settings.returns_model, risk_free_rate=dec(settings.risk_free_rate),  # type: ignore[arg-type]
        max_weight=dec(r.max_weight), expected_return=dec(r.expected_return), volatility=dec(r.volatility),
        sharpe=dec(r.sharpe), inputs_from=r.inputs_from.date() if r.inputs_from is not None else None,
        inputs_to=r.inputs_to.date() if r.inputs_to is not None else None, observations=r.observations,
        excluded=[Excluded(symbol=s, reason=why) for s, why in sorted(r.excluded.items())], computed_at=utcnow())
    await ctx.publish(t.OPTIMIZATION_TARGETS, targets)
    if r.mu is not None and r.cov is not None:
        await ctx.publish(t.OPTIMIZATION_INPUTS, Inputs(
            symbols=list(r.mu.index), mu=[float(x) for x in r.mu], cov_b64=matrix.encode(r.cov.to_numpy()),
            inputs_to=targets.inputs_to, computed_at=targets.computed_at))
    return targets

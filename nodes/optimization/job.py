"""The optimization node's run in its child process (`nodes/child.py`): the closes in, the
targets and the optimiser's inputs out as messages, so that pandas, PyPortfolioOpt and
cvxpy load only there."""

from __future__ import annotations

from decimal import Decimal

from nodes import history, matrix
from schemas.common import utcnow
from schemas.optimization import Excluded, Inputs, Target, Targets

from . import model
from .settings import Settings


def optimize(closes: history.Closes, settings: Settings) -> tuple[Targets, Inputs | None]:
    """The target weights of `model.optimize` (ValueError when it has none), and the
    expected returns and covariance they came from (None after a fallback without them)."""
    r = model.optimize(history.frame(closes), settings)

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
    if r.mu is None or r.cov is None:
        return targets, None
    inputs = Inputs(
        symbols=list(r.mu.index),
        mu=[float(x) for x in r.mu],
        cov_b64=matrix.encode(r.cov.to_numpy()),
        inputs_to=targets.inputs_to,
        computed_at=targets.computed_at,
    )
    return targets, inputs

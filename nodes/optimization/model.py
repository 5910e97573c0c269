"""Target weights with PyPortfolioOpt. Pure: prices in, weights and their story out.

1. Inputs: the last `lookback` days (3 years) of daily closes; a security with fewer than
   `min_days` closes in that window is excluded, with the reason. The covariance needs
   common days, so the window is cut to the days where every kept security has a close.
2. Expected returns: the annualised mean historical return, or its exponentially weighted
   version (`ema`, span 500 days); covariance: Ledoit-Wolf shrinkage (the sample
   covariance is singular or unstable with few observations) toward constant variance, or
   by `OPT_COV` toward constant correlation, or exponentially weighted (span 180 days).
3. Mean-variance: maximum Sharpe ratio with weight bounds [0, max_weight] and L2
   regularisation (gamma), which keeps weights from piling into a few names. When no
   security's expected return beats the risk-free rate, or the solver fails, minimum
   volatility; when that fails too, equal weights.
4. HRP (hierarchical risk parity) on the daily returns; equal weights if it fails.
5. Blend: `blend` x mean-variance + (1 - blend) x HRP, then capped at `max_weight`
   (HRP knows no bounds; the excess goes to the others in proportion), rounded to 6
   places so that the weights add up to exactly 1.

Every fallback is reported in `fallbacks`, with its reason.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier, HRPOpt, expected_returns, objective_functions, risk_models
from pypfopt.base_optimizer import portfolio_performance

from .settings import Settings

PLACES = Decimal("0.000001")


@dataclass
class Result:
    weights: dict[str, Decimal]
    mean_variance: dict[str, float]
    hrp: dict[str, float]
    mean_variance_method: str
    hrp_method: str
    fallbacks: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    expected_return: float = 0.0
    volatility: float = 0.0
    sharpe: float = 0.0
    max_weight: float = 0.0
    inputs_from: pd.Timestamp | None = None
    inputs_to: pd.Timestamp | None = None
    observations: int = 0
    mu: pd.Series | None = None  # the annual expected returns used
    cov: pd.DataFrame | None = None  # the annual (shrunk) covariance used


def _equal(symbols: list[str]) -> dict[str, float]:
    return {s: 1.0 / len(symbols) for s in symbols}


def cap(weights: dict[str, float], maximum: float) -> dict[str, float]:
    """Weights at most `maximum` each, the excess given to the others in proportion."""
    w = dict(weights)
    for _ in range(len(w)):
        over = {s: v for s, v in w.items() if v > maximum + 1e-12}
        if not over:
            break
        excess = sum(v - maximum for v in over.values())
        for s in over:
            w[s] = maximum
        room = {s: v for s, v in w.items() if v < maximum - 1e-12}
        total = sum(room.values())
        for s, v in room.items():
            w[s] = v + excess * (v / total if total > 0 else 1 / len(room))
    return w


def to_decimals(weights: dict[str, float]) -> dict[str, Decimal]:
    """Rounded to 6 places; the rounding residue goes to the largest weight: the sum is 1."""
    out = {s: Decimal(repr(max(float(v), 0.0))).quantize(PLACES, ROUND_HALF_UP) for s, v in weights.items()}
    residue = Decimal(1) - sum(out.values())
    if out and residue:
        top = max(out, key=lambda s: out[s])
        out[top] += residue
    return out


def select(prices: pd.DataFrame, s: Settings) -> tuple[pd.DataFrame, dict[str, str]]:
    window = prices.iloc[-s.lookback :]
    counts = window.notna().sum()
    excluded = {
        sym: f"{int(n)} closes in the last {s.lookback} days; at least {s.min_days} needed"
        for sym, n in counts.items()
        if n < s.min_days
    }
    kept = window[[c for c in window.columns if c not in excluded]].dropna()
    return kept, excluded


def optimize(prices: pd.DataFrame, s: Settings | None = None) -> Result:
    s = s or Settings()
    kept, excluded = select(prices, s)
    symbols = list(kept.columns)
    if not symbols:
        raise ValueError(
            "no security has enough history to optimise: " + "; ".join(f"{k}: {v}" for k, v in excluded.items())
            if excluded
            else "no securities"
        )
    fallbacks: list[str] = []
    max_weight = s.max_weight
    if max_weight * len(symbols) < 1:
        max_weight = math.ceil(1e6 / len(symbols)) / 1e6
        fallbacks.append(
            f"max weight raised from {s.max_weight:g} to {max_weight:g}: "
            f"{len(symbols)} securities cannot hold 100 % at {s.max_weight:g} each"
        )
    if len(kept) < s.min_days:
        raise ValueError(f"only {len(kept)} days where every kept security has a close; {s.min_days} needed")
    if s.returns_model == "ema":
        mu = expected_returns.ema_historical_return(kept, span=s.ema_span)
    elif s.returns_model == "capm":  # each security's beta to the universe's mean, times its premium
        mu = expected_returns.capm_return(kept, risk_free_rate=s.risk_free_rate)
    else:
        mu = expected_returns.mean_historical_return(kept)
    if s.covariance == "exp":
        cov = risk_models.exp_cov(kept, span=s.cov_span)
    else:
        target = "constant_correlation" if s.covariance == "constant_correlation" else "constant_variance"
        cov = risk_models.CovarianceShrinkage(kept).ledoit_wolf(shrinkage_target=target)

    if len(symbols) == 1:
        mv, mv_method = {symbols[0]: 1.0}, "max_sharpe"
    elif float(mu.max()) <= s.risk_free_rate:
        fallbacks.append(
            f"mean-variance: no security's expected return beats the risk-free rate "
            f"{s.risk_free_rate:g} (best {float(mu.max()):.4f}); minimum volatility used"
        )
        mv, mv_method = _min_volatility(mu, cov, max_weight, s, symbols, fallbacks)
    else:
        try:
            ef = EfficientFrontier(mu, cov, weight_bounds=(0, max_weight))
            ef.add_objective(objective_functions.L2_reg, gamma=s.gamma)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ef.max_sharpe(risk_free_rate=s.risk_free_rate)
            mv, mv_method = dict(ef.clean_weights()), "max_sharpe"
        except Exception as exc:  # pypfopt's OptimizationError, cvxpy's SolverError, ValueError
            fallbacks.append(f"mean-variance: max Sharpe failed ({type(exc).__name__}: {exc}); minimum volatility used")
            mv, mv_method = _min_volatility(mu, cov, max_weight, s, symbols, fallbacks)

    try:
        hrp = dict(HRPOpt(returns=kept.pct_change().dropna()).optimize())
        hrp_method = "hrp"
    except Exception as exc:
        fallbacks.append(f"HRP failed ({type(exc).__name__}: {exc}); equal weights used")
        hrp, hrp_method = _equal(symbols), "equal_weight"

    blended = {sym: s.blend * mv.get(sym, 0.0) + (1 - s.blend) * hrp.get(sym, 0.0) for sym in symbols}
    capped = cap(blended, max_weight)
    if any(abs(capped[k] - blended[k]) > 1e-9 for k in symbols):
        fallbacks.append(f"blend capped at the max weight {max_weight:g} (HRP knows no bounds)")
    weights = to_decimals(capped)
    w = np.array([float(weights[k]) for k in symbols])
    ret, vol, sharpe = portfolio_performance(w, mu, cov, risk_free_rate=s.risk_free_rate)
    return Result(
        weights=weights,
        mean_variance=mv,
        hrp=hrp,
        mean_variance_method=mv_method,
        hrp_method=hrp_method,
        fallbacks=fallbacks,
        excluded=excluded,
        expected_return=float(ret),
        volatility=float(vol),
        sharpe=float(sharpe),
        max_weight=max_weight,
        inputs_from=kept.index.min(),
        inputs_to=kept.index.max(),
        observations=len(kept),
        mu=mu,
        cov=cov,
    )


def _min_volatility(
    mu: pd.Series, cov: pd.DataFrame, max_weight: float, s: Settings, symbols: list[str], fallbacks: list[str]
) -> tuple[dict[str, float], str]:
    try:
        ef = EfficientFrontier(mu, cov, weight_bounds=(0, max_weight))
        ef.add_objective(objective_functions.L2_reg, gamma=s.gamma)
        ef.min_volatility()
        return dict(ef.clean_weights()), "min_volatility"
    except Exception as exc:
        fallbacks.append(f"mean-variance: minimum volatility failed ({type(exc).__name__}: {exc}); equal weights used")
        return _equal(symbols), "equal_weight"

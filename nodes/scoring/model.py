"""The composite score: pure functions of daily closes (no MQTT, no clock).

Per security, from its adjusted daily closes (the README documents the same table):

| part      | from (library)                                   | sub-score in [0, 1]                     | weight |
| --------- | ------------------------------------------------ | --------------------------------------- | ------ |
| cagr      | empyrical `annual_return`, last 5 years            | CAGR / 25 %, clipped                    | 0.15 |
| sharpe    | empyrical `sharpe_ratio` (rf 0), 5 years           | Sharpe / 1.5, clipped                   | 0.15 |
| sortino   | empyrical `sortino_ratio` (required return 0)      | Sortino / 2.0, clipped                  | 0.10 |
| drawdown  | empyrical `max_drawdown`, 5 years                  | 1 + MDD / 60 % (MDD <= -60 % gives 0)    | 0.10 |
| calmar    | CAGR / abs(MDD) (empyrical's `calmar_ratio`)        | Calmar / 1.0, clipped                   | 0.05 |
| alpha     | empyrical `alpha` against SPY, 5 years             | 0.5 + alpha / 20 %, clipped             | 0.05 |
| trend     | pandas-ta EMA 50 and EMA 200, last day             | 0.5 + (EMA50 / EMA200 - 1) / 20 %, clipped | 0.20 |
| rsi       | pandas-ta RSI 14, last day                         | 1 - abs(RSI - 55) / 45, clipped          | 0.10 |
| bollinger | pandas-ta Bollinger %B (20 days, 2 sd), last day   | 1 - %B, clipped (low in the band: cheaper) | 0.20 |

The composite is 100 x the weighted sum divided by the weights' sum (1.1), in [0, 100]; the
weights are `settings.WEIGHTS`, which `SCORING_WEIGHTS` changes. Beta against SPY and annual
volatility are reported, not scored. A security with fewer than `MIN_DAYS` closes gets
"insufficient_history" and no score. The statistics look at the last `HORIZON_DAYS`
(or all the history when shorter); the statistics of all securities with a full horizon
are computed at once (empyrical on 2-D arrays, one value per column).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import empyrical as ep
import numpy as np
import pandas as pd
import pandas_ta as ta

from .settings import HISTORY_DAYS as HISTORY_DAYS  # the closes a score looks at (the node's setting)
from .settings import HORIZON_DAYS, WEIGHTS

MIN_DAYS = 252  # one year: enough for EMA 200 and a year of returns
INDICATOR_DAYS = 600  # the indicators look at the last 600 closes: EMA 200 has settled by then


@dataclass
class Result:
    symbol: str
    status: Literal["ok", "insufficient_history"]
    days: int
    score: float | None = None
    parts: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)


def clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x))) if math.isfinite(x) else 0.0


def statistics(returns: pd.DataFrame, benchmark: pd.Series) -> pd.DataFrame:
    """empyrical statistics of every column at once (the columns have no gaps)."""
    r = returns.to_numpy()
    b = benchmark.reindex(returns.index).to_numpy()
    cagr = np.asarray(ep.annual_return(r))
    mdd = np.asarray(ep.max_drawdown(r))
    with np.errstate(divide="ignore", invalid="ignore"):
        calmar = np.where(mdd < 0, cagr / np.abs(mdd), np.nan)
    return pd.DataFrame(
        {
            "cagr": cagr,
            "volatility": np.asarray(ep.annual_volatility(r)),
            "sharpe": np.asarray(ep.sharpe_ratio(r)),
            "sortino": np.asarray(ep.sortino_ratio(r)),
            "max_drawdown": mdd,
            "calmar": calmar,
            "alpha": np.asarray(ep.alpha_aligned(r, b[:, None])),
            "beta": np.asarray(ep.beta_aligned(r, b)),
        },
        index=returns.columns,
    )


def indicators(close: pd.Series) -> dict[str, float]:
    """pandas-ta indicators on the last day (closes only: no high/low/volume needed)."""
    close = close.iloc[-INDICATOR_DAYS:]
    ema50 = ta.ema(close, length=50).iloc[-1]
    ema200 = ta.ema(close, length=200).iloc[-1]
    rsi = ta.rsi(close, length=14).iloc[-1]
    bb = ta.bbands(close, length=20, std=2)
    pctb = bb[next(c for c in bb.columns if c.startswith("BBP_"))].iloc[-1]
    return {"ema50": float(ema50), "ema200": float(ema200), "rsi14": float(rsi), "bb_pctb": float(pctb)}


def parts_of(stats: dict[str, float], ind: dict[str, float]) -> dict[str, float]:
    return {
        "cagr": clip01(stats["cagr"] / 0.25),
        "sharpe": clip01(stats["sharpe"] / 1.5),
        "sortino": clip01(stats["sortino"] / 2.0),
        "drawdown": clip01(1 + stats["max_drawdown"] / 0.60),
        "calmar": clip01(stats["calmar"] / 1.0) if math.isfinite(stats["calmar"]) else 1.0,
        "alpha": clip01(0.5 + stats["alpha"] / 0.20),
        "trend": clip01(0.5 + (ind["ema50"] / ind["ema200"] - 1) / 0.20),
        "rsi": clip01(1 - abs(ind["rsi14"] - 55) / 45),
        "bollinger": clip01(1 - ind["bb_pctb"]),
    }


def composite(parts: dict[str, float], weights: Mapping[str, float] = WEIGHTS) -> float:
    """100 x the weighted mean of the parts (weights relative: `SCORING_WEIGHTS` need not add up to 1)."""
    total = sum(weights.values())
    return round(100 * sum(weights[k] * v for k, v in parts.items()) / total, 4)


def score_universe(closes: pd.DataFrame, benchmark: pd.Series, weights: Mapping[str, float] = WEIGHTS) -> list[Result]:
    """Score every column of `closes` (dates x symbols, NaN before a listing) against
    the benchmark's closes. Deterministic: same closes, same scores."""
    closes = closes.sort_index()
    bench_ret = benchmark.sort_index().pct_change()
    window = closes.iloc[-(HORIZON_DAYS + 1) :]
    returns = window.pct_change().iloc[1:]
    days = closes.notna().sum()
    results: dict[str, Result] = {}
    full = [c for c in closes.columns if returns[c].notna().all() and days[c] >= MIN_DAYS]
    stats = statistics(returns[full], bench_ret) if full else pd.DataFrame()
    for symbol in closes.columns:
        n = int(days[symbol])
        if n < MIN_DAYS:
            results[symbol] = Result(symbol, "insufficient_history", n)
            continue
        if symbol in stats.index:
            s = stats.loc[symbol].to_dict()
        else:  # a shorter history than the horizon: its own window, one column
            r = returns[[symbol]].dropna()
            s = statistics(r, bench_ret).loc[symbol].to_dict()
        ind = indicators(closes[symbol].dropna().iloc[-(HORIZON_DAYS + 1) :])
        parts = parts_of(s, ind)
        results[symbol] = Result(symbol, "ok", n, composite(parts, weights), parts, {**_finite(s), **_finite(ind)})
    return [results[c] for c in closes.columns]


def score_loop(closes: pd.DataFrame, benchmark: pd.Series, weights: Mapping[str, float] = WEIGHTS) -> list[Result]:
    """The naive baseline: each security on its own, every statistic by its own call."""
    out = []
    bench_ret = benchmark.sort_index().pct_change()
    for symbol in closes.columns:
        c = closes[symbol].dropna()
        if len(c) < MIN_DAYS:
            out.append(Result(symbol, "insufficient_history", len(c)))
            continue
        r = c.iloc[-(HORIZON_DAYS + 1) :].pct_change().iloc[1:]
        b = bench_ret.reindex(r.index)
        mdd = float(ep.max_drawdown(r))
        s = {
            "cagr": float(ep.annual_return(r)),
            "volatility": float(ep.annual_volatility(r)),
            "sharpe": float(ep.sharpe_ratio(r)),
            "sortino": float(ep.sortino_ratio(r)),
            "max_drawdown": mdd,
            "calmar": float(ep.calmar_ratio(r)) if mdd < 0 else float("nan"),
            "alpha": float(ep.alpha(r, b)),
            "beta": float(ep.beta(r, b)),
        }
        ind = indicators(c.iloc[-(HORIZON_DAYS + 1) :])
        parts = parts_of(s, ind)
        out.append(Result(symbol, "ok", len(c), composite(parts, weights), parts, {**_finite(s), **_finite(ind)}))
    return out


def _finite(d: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 8) for k, v in d.items() if v is not None and math.isfinite(float(v))}
